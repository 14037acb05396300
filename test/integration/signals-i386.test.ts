// The signal suite (signals-suite.ts) for i386 programs.
import { signalsSuite } from "./signals-suite";

signalsSuite("i386");
