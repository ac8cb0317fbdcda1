using Onnx;

namespace MlNetTransfer.TorchSharp.OnnxImport;

/// <summary>
/// ONNX padding for Conv and the pools (pads [x1_begin, x2_begin, ..., x1_end, x2_end] or auto_pad), resolved for an
/// input size, and how to hand it to libtorch, whose convolutions and pools only pad symmetrically.
/// </summary>
internal sealed class SpatialPadding
{
    private readonly string _autoPad;
    private readonly long[]? _pads;

    private SpatialPadding(string autoPad, long[]? pads)
    {
        _autoPad = autoPad;
        _pads = pads;
    }

    public static SpatialPadding FromNode(NodeProto node)
    {
        var autoPad = node.String("auto_pad", "NOTSET");
        if (autoPad.Length == 0)
            autoPad = "NOTSET";
        if (autoPad is not ("NOTSET" or "VALID" or "SAME_UPPER" or "SAME_LOWER"))
            throw new NotSupportedException($"Node {node.Describe()}: auto_pad '{autoPad}' is not an ONNX value.");
        var pads = node.Ints("pads");
        if (autoPad == "NOTSET" && pads is { Length: > 0 } && pads.Length % 2 != 0)
            throw new OnnxImportException($"Node {node.Describe()}: pads has {pads.Length} values, not two per spatial axis.");
        return new SpatialPadding(autoPad, autoPad == "NOTSET" ? pads : null);
    }

    /// <summary>Pads before and after each spatial axis for this input size (SAME_* depends on it).</summary>
    public (long[] Begin, long[] End) Resolve(long[] inputSize, long[] effectiveKernel, long[] strides)
    {
        int r = inputSize.Length;
        var begin = new long[r];
        var end = new long[r];
        if (_autoPad is "SAME_UPPER" or "SAME_LOWER")
        {
            for (int i = 0; i < r; i++)
            {
                long outSize = (inputSize[i] + strides[i] - 1) / strides[i];
                long total = Math.Max(0, (outSize - 1) * strides[i] + effectiveKernel[i] - inputSize[i]);
                // SAME_UPPER puts the odd pixel at the end, SAME_LOWER at the beginning.
                begin[i] = _autoPad == "SAME_UPPER" ? total / 2 : total - total / 2;
                end[i] = total - begin[i];
            }
        }
        else if (_pads is { Length: > 0 })
        {
            if (_pads.Length != 2 * r)
                throw new OnnxImportException($"pads has {_pads.Length} values for {r} spatial axes.");
            Array.Copy(_pads, 0, begin, 0, r);
            Array.Copy(_pads, r, end, 0, r);
        }
        return (begin, end);
    }

    /// <summary>
    /// A symmetric padding that gives exactly the same windows, or null when there is none. Lopsided pads such as
    /// CNTK's [3,3,2,2] usually qualify: when padding the larger side on both ends yields the same number of windows,
    /// the extra padding is never reached. Saves a padded copy of the input.
    /// </summary>
    public static long[]? SymmetricEquivalent(long[] begin, long[] end, long[] inputSize, long[] effectiveKernel, long[] strides, long[]? maxPad = null)
    {
        var symmetric = new long[begin.Length];
        for (int i = 0; i < begin.Length; i++)
        {
            if (maxPad is not null && begin[i] > maxPad[i])
                return null;
            if (begin[i] != end[i])
            {
                long symmetricSpan = inputSize[i] + 2 * begin[i] - effectiveKernel[i];
                long span = inputSize[i] + begin[i] + end[i] - effectiveKernel[i];
                if (symmetricSpan < 0 || span < 0 || symmetricSpan / strides[i] != span / strides[i])
                    return null;
            }
            symmetric[i] = begin[i];
        }
        return symmetric;
    }

    /// <summary>The pad argument of torch's F.pad for these pads: last axis first, (begin, end) per axis.</summary>
    public static long[] TorchPadArgument(long[] begin, long[] end)
    {
        var pad = new long[2 * begin.Length];
        for (int i = 0; i < begin.Length; i++)
        {
            pad[2 * i] = begin[begin.Length - 1 - i];
            pad[2 * i + 1] = end[begin.Length - 1 - i];
        }
        return pad;
    }

    public static bool IsZero(long[] begin, long[] end) => begin.All(p => p == 0) && end.All(p => p == 0);
}
