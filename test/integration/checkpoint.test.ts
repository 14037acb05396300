// The checkpoint suite (checkpoint-suite.ts) for x86_64 programs.
import { checkpointSuite } from "./checkpoint-suite";

checkpointSuite("x86_64");
