namespace MlNetTransfer.Featurization;

/// <summary>
/// Training views of an image, made from its planar RGB pixels: a random resized crop (a random part of the image,
/// 35-100 % of its area, aspect 3:4 to 4:3, scaled to the input size) and, where allowed, a random left-right flip.
/// The plain view (what the saved model sees) is made by the ML.NET transforms themselves.
/// </summary>
internal static class PixelViews
{
    /// <summary>Side of the square, centre-cropped image the random crops are taken from, for an input side.</summary>
    public static int SourceSide(int inputSide) => (int)Math.Round(inputSide * 256.0 / 224.0);

    /// <summary>Writes one augmented view of <paramref name="source"/> ([3, side, side]) into <paramref name="target"/> ([3, h, w]).</summary>
    public static void RandomResizedCrop(ReadOnlySpan<float> source, int side, Span<float> target, int width, int height, Random random,
        bool allowFlip = true, double minArea = 0.35, double maxArea = 1.0)
    {
        double area = side * (double)side;
        double cropW = side, cropH = side, x0 = 0, y0 = 0;
        for (int attempt = 0; attempt < 10; attempt++)
        {
            double target_ = area * (minArea + (maxArea - minArea) * random.NextDouble());
            double logRatio = Math.Log(3.0 / 4.0) + (Math.Log(4.0 / 3.0) - Math.Log(3.0 / 4.0)) * random.NextDouble();
            double ratio = Math.Exp(logRatio);
            double w = Math.Sqrt(target_ * ratio), h = Math.Sqrt(target_ / ratio);
            if (w <= side && h <= side)
            {
                cropW = w;
                cropH = h;
                x0 = (side - w) * random.NextDouble();
                y0 = (side - h) * random.NextDouble();
                break;
            }
        }
        // The flip is drawn either way, so that turning flips off changes nothing else about the crop.
        bool flip = random.Next(2) == 1 && allowFlip;
        int plane = side * side, outPlane = width * height;
        for (int y = 0; y < height; y++)
        {
            // Sample at pixel centres, as bilinear resizers do.
            double sy = y0 + (y + 0.5) * cropH / height - 0.5;
            int iy = (int)Math.Floor(sy);
            double fy = sy - iy;
            int y1 = Math.Clamp(iy, 0, side - 1), y2 = Math.Clamp(iy + 1, 0, side - 1);
            for (int x = 0; x < width; x++)
            {
                double sx = x0 + (x + 0.5) * cropW / width - 0.5;
                int ix = (int)Math.Floor(sx);
                double fx = sx - ix;
                int x1 = Math.Clamp(ix, 0, side - 1), x2 = Math.Clamp(ix + 1, 0, side - 1);
                int outX = flip ? width - 1 - x : x;
                for (int c = 0; c < 3; c++)
                {
                    var s = source.Slice(c * plane, plane);
                    double top = s[y1 * side + x1] * (1 - fx) + s[y1 * side + x2] * fx;
                    double bottom = s[y2 * side + x1] * (1 - fx) + s[y2 * side + x2] * fx;
                    target[c * outPlane + y * width + outX] = (float)(top * (1 - fy) + bottom * fy);
                }
            }
        }
    }
}
