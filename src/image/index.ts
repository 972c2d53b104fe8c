export { decodeImage, loadImage, sniffFormat } from './decode.js';
export type { RgbImage, DecodeOptions, AlphaMode, ImageFormat } from './decode.js';
export { resizeBilinear, resampleBilinear, resizeShortSide, centerCrop } from './resize.js';
export {
  preprocess,
  HF_VIT_PREPROCESSING,
  IMAGENET_PREPROCESSING,
  IMAGENET_DEFAULT_MEAN,
  IMAGENET_DEFAULT_STD,
} from './preprocess.js';
export type { PreprocessConfig, PreprocessedImage } from './preprocess.js';
export { encodePng, writePng } from './png.js';
export { heatmapColor, overlayHeatmap, tileImages, upscaleNearest, chwToRgb, grayToRgb } from './draw.js';
export type { Rgb, ColormapName } from './draw.js';
