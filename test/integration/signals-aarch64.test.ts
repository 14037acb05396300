// The signal suite (signals-suite.ts) for aarch64 programs.
import { signalsSuite } from "./signals-suite";

signalsSuite("aarch64");
