export { setFileSystem, type FileSystem } from './files.js';
export { readSafetensors, readSafetensorsWithMetadata, writeSafetensors, encodeSafetensors, decodeSafetensors, type SafetensorsContents, type SafetensorsWriteOptions } from './safetensors.js';
export { saveCheckpoint, loadCheckpoint, encodeCheckpoint, type CheckpointContents, type LoadCheckpointTargets } from './checkpoint.js';
export { readNifti, writeNifti, encodeNifti, type NiftiImage, type NiftiHeader, type NiftiDatatype, type ReadNiftiOptions, type WriteNiftiOptions } from './nifti.js';
export { cropVolume, padVolume, resampleVolume, withTensor, spacingFromAffine, orientation, type Volume, type Affine, type ResampleTarget, type ResampleOptions } from './volume.js';
export { writePng, encodePng, PNG_PALETTE, type PngOptions } from './png.js';
export { readNrrd, type NrrdImage, type NrrdHeader, type ReadNrrdOptions } from './nrrd.js';
