// The checkpoint suite (checkpoint-suite.ts) for armv7 programs.
import { checkpointSuite } from "./checkpoint-suite";

checkpointSuite("armv7");
