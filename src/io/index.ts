export { setFileSystem, type FileSystem } from './files.js';
