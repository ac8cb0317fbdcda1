using Onnx;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MlNetTransfer.TorchSharp.OnnxImport;

/// <summary>ONNX Conv (1-D to 3-D; group, dilations, strides, pads incl. lopsided ones, auto_pad).</summary>
internal static class ConvolutionOp
{
    public static NodeKernel Compile(NodeProto node)
    {
        var padding = SpatialPadding.FromNode(node);
        long group = node.Int("group", 1);
        var stridesAttribute = node.Ints("strides");
        var dilationsAttribute = node.Ints("dilations");
        return inputs =>
        {
            Tensor x = inputs[0]!, w = inputs[1]!;
            Tensor? b = inputs.Length > 2 ? inputs[2] : null;
            int r = (int)w.ndim - 2;
            if (r is < 1 or > 3 || x.ndim != w.ndim)
                throw new NotSupportedException($"Conv {node.Describe()}: input rank {x.ndim} with weight rank {w.ndim}; 1-D to 3-D convolutions are supported.");
            var strides = Spatial.Values(stridesAttribute, r, node, "strides");
            var dilations = Spatial.Values(dilationsAttribute, r, node, "dilations");
            var size = x.shape[2..];
            var kernel = w.shape[2..];
            var effectiveKernel = Spatial.EffectiveKernel(kernel, dilations);
            var (begin, end) = padding.Resolve(size, effectiveKernel, strides);

            if (SpatialPadding.SymmetricEquivalent(begin, end, size, effectiveKernel, strides) is { } symmetric)
                return Convolve(x, w, b, strides, symmetric, dilations, group);
            // Lopsided pads that matter: pad explicitly with zeros, then convolve without padding.
            using var padded = F.pad(x, SpatialPadding.TorchPadArgument(begin, end));
            return Convolve(padded, w, b, strides, new long[r], dilations, group);
        };
    }

    private static Tensor Convolve(Tensor x, Tensor w, Tensor? b, long[] strides, long[] pads, long[] dilations, long group)
    {
        switch (strides.Length)
        {
            case 1:
                // As a 2-D convolution over a height of 1: TorchSharp's conv1d takes scalars only.
                using (var x2 = x.unsqueeze(2))
                using (var w2 = w.unsqueeze(2))
                using (var y = F.conv2d(x2, w2, b, [1, strides[0]], [0, pads[0]], [1, dilations[0]], group))
                    return y.squeeze(2);
            case 2:
                return F.conv2d(x, w, b, strides, pads, dilations, group);
            default:
                return F.conv3d(x, w, b, strides, pads, dilations, group);
        }
    }
}
