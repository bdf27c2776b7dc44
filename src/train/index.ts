// vg.train: checkpoints of a model with its optimizer and scheduler.
export { saveCheckpoint, loadCheckpoint, encodeCheckpoint, type CheckpointContents, type LoadCheckpointTargets } from './checkpoint.js';
