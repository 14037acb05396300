// The signal suite (signals-suite.ts) for armv7 programs.
import { signalsSuite } from "./signals-suite";

signalsSuite("armv7");
