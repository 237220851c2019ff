// Reads one picture through FFmpeg: any image format it knows (PNG, JPEG, PPM, BMP, ...) or
// frame N of any video. Used by `oneadapt model run --image` and tests.
#pragma once

#include <ATen/core/Tensor.h>

#include <filesystem>
#include <string>
#include <vector>

namespace oneadapt {

/// Decodes frame `index` (0 for an image) of `path` to RGB: uint8 tensor [H, W, 3].
/// Throws Error naming the file: not_found, corrupt_data (not decodable, or fewer frames).
at::Tensor read_rgb_frame(const std::filesystem::path& path, int index = 0);

/// Turns an RGB uint8 picture [H, W, 3] into the image input a model declares: values scaled
/// to [0, range], stretched (bilinear, half-pixel) to the input's height and width, in the
/// input's layout ([N,3,H,W] when dim 1 is 3, else [N,H,W,3]). `note` receives a one-line
/// description. Throws Error when the input is not an RGB image batch.
at::Tensor image_to_input(const at::Tensor& rgb_hwc, const std::vector<int64_t>& input_shape,
                          double range, std::string* note = nullptr);

}  // namespace oneadapt
