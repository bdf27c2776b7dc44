export { setFileSystem, type FileSystem } from './files.js';
export { readSafetensors, readSafetensorsWithMetadata, writeSafetensors, encodeSafetensors, decodeSafetensors, type SafetensorsContents, type SafetensorsWriteOptions } from './safetensors.js';
export { saveCheckpoint, loadCheckpoint, encodeCheckpoint, type CheckpointContents, type LoadCheckpointTargets } from './checkpoint.js';
