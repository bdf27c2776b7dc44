export { setFileSystem, type FileSystem } from './files.js';
export { readSafetensors, readSafetensorsWithMetadata, writeSafetensors, encodeSafetensors, decodeSafetensors, type SafetensorsContents, type SafetensorsWriteOptions } from './safetensors.js';
export { readNifti, writeNifti, encodeNifti, type NiftiImage, type NiftiHeader, type NiftiDatatype, type ReadNiftiOptions, type WriteNiftiOptions } from './nifti.js';
export { cropVolume, padVolume, resampleVolume, withTensor, spacingFromAffine, orientation, type Volume, type Affine, type ResampleTarget, type ResampleOptions } from './volume.js';
export { writePng, encodePng, PNG_PALETTE, type PngOptions } from './png.js';
export { readNrrd, type NrrdImage, type NrrdHeader, type ReadNrrdOptions } from './nrrd.js';
export { writeDisplacementNifti, readDisplacementNifti, encodeDisplacementNifti, displacementToWorld, displacementFromWorld, type DisplacementConvention, type DisplacementField, type WriteDisplacementOptions, type ReadDisplacementOptions } from './displacement.js';
export { flowColor, deformationGrid, jacobianMap, heatmap, overlay, figureGrid, MIDDLEBURY_WHEEL, JACOBIAN_COLORS, type Panel, type FlowColorOptions, type DeformationGridOptions, type JacobianMapOptions, type HeatmapOptions, type OverlayOptions, type FigureGridOptions } from './figures.js';
export { writeCsv, toCsv, parseCsv, readCsv, markdownTable, meanSd, type Row, type CsvOptions, type MarkdownTableOptions } from './tables.js';
