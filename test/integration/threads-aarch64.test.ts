// The multi-threaded suite (threads-suite.ts) for aarch64 programs.
import { threadsSuite } from "./threads-suite";

threadsSuite("aarch64");
