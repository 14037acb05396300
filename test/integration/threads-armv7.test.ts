// The multi-threaded suite (threads-suite.ts) for armv7 programs.
import { threadsSuite } from "./threads-suite";

threadsSuite("armv7");
