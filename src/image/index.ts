export { decodeImage, loadImage, sniffFormat } from './decode.js';
export type { RgbImage, DecodeOptions, AlphaMode, ImageFormat } from './decode.js';
export { resizeBilinear, resampleBilinear, resizeShortSide, centerCrop } from './resize.js';
export {
  preprocess,
  prepareImage,
  toPixels,
  normalizePixels,
  luma,
  HF_VIT_PREPROCESSING,
  IMAGENET_PREPROCESSING,
  IMAGENET_DEFAULT_MEAN,
  IMAGENET_DEFAULT_STD,
} from './preprocess.js';
export type {
  PreprocessConfig,
  PreprocessedImage,
  PreparedImage,
  PixelBytes,
  InvertMode,
} from './preprocess.js';
export { POLARITIES, borderBrightness, datasetPolarity, imagePolarity, invertImage } from './polarity.js';
export type { Polarity, NormalisedImages } from './polarity.js';
export { encodePng, writePng } from './png.js';
export { heatmapColor, overlayHeatmap, tileImages, upscaleNearest, chwToRgb, grayToRgb } from './draw.js';
export type { Rgb, ColormapName } from './draw.js';
