// The checkpoint suite (checkpoint-suite.ts) for i386 programs.
import { checkpointSuite } from "./checkpoint-suite";

checkpointSuite("i386");
