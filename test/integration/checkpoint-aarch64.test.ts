// The checkpoint suite (checkpoint-suite.ts) for aarch64 programs.
import { checkpointSuite } from "./checkpoint-suite";

checkpointSuite("aarch64");
