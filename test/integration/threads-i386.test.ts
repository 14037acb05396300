// The multi-threaded suite (threads-suite.ts) for i386 programs.
import { threadsSuite } from "./threads-suite";

threadsSuite("i386");
