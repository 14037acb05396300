// The multi-threaded suite (threads-suite.ts) for x86_64 programs.
import { threadsSuite } from "./threads-suite";

threadsSuite("x86_64");
