// The signal suite (signals-suite.ts) for x86_64 programs.
import { signalsSuite } from "./signals-suite";

signalsSuite("x86_64");
