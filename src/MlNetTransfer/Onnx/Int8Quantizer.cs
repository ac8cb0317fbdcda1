using System.Globalization;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;

namespace MlNetTransfer.Onnx;

/// <summary>Options of <see cref="Int8Quantizer"/>.</summary>
public sealed record Int8QuantizationOptions
{
    /// <summary>Images of the calibration batches used at most (a batch that crosses the limit is cut). Default 200.</summary>
    public int CalibrationImages { get; init; } = 200;

    /// <summary>One weight scale per Conv output channel (axis 0) rather than one per tensor. Default true.</summary>
    public bool PerChannelWeights { get; init; } = true;

    /// <summary>
    /// 7-bit weights (int8 values in −64..64). ONNX Runtime's advice for x86 without VNNI: its u8s8 kernels (VPMADDUBSW)
    /// add pairs of u8·s8 products in saturating 16-bit arithmetic, which full-range weights overflow. Default true:
    /// measured on resnet18 (AMD EPYC Zen 3, AVX2 without VNNI, ORT 1.31.1, hymenoptera val), features' cosine to fp32 was
    /// mean 0.962 / min 0.675 with 8-bit weights and 0.997 / 0.991 with 7-bit ones, at the same speed. On CPUs with VNNI
    /// (or ARM) false gains a bit of precision.
    /// </summary>
    public bool ReduceRange { get; init; } = true;

    /// <summary>
    /// How activation ranges are taken from the calibration run. Default <see cref="CalibrationMethod.Percentile"/> at
    /// <see cref="Percentile"/> 99.999: on resnet18 with 200 hymenoptera train images it gave cosine mean 0.9975 / min
    /// 0.9910 on val against 0.9972 / 0.9908 for MinMax (99.99: 0.9961 / 0.9716; 99.9: 0.980 / 0.908), and unlike MinMax
    /// it does not widen every range as more calibration images bring rarer extremes.
    /// </summary>
    public CalibrationMethod Calibration { get; init; } = CalibrationMethod.Percentile;

    /// <summary>For <see cref="CalibrationMethod.Percentile"/>: share of values (%) inside the range at each end. Default 99.999.</summary>
    public double Percentile { get; init; } = 99.999;

    /// <summary>Quantize Add (residual sums) so ONNX Runtime runs QLinearAdd between int8 convolutions. Default true.</summary>
    public bool QuantizeAdd { get; init; } = true;

    /// <summary>ORT intra-op threads for the calibration run; null = all cores.</summary>
    public int? CalibrationThreads { get; init; }
}

/// <summary>
/// Static int8 quantization of a composed featurizer graph into the QDQ format that ONNX Runtime's own quantization tool
/// writes (onnxruntime/python/tools/quantization, <c>quantize_static</c> with <c>QuantFormat.QDQ</c>), so ORT's CPU
/// provider fuses each DequantizeLinear → op → QuantizeLinear group into an int8 kernel:
/// <list type="bullet">
/// <item>BatchNormalization is folded into the Conv in front of it first (<see cref="ConvBatchNormFolding"/>);</item>
/// <item>Conv weights: int8, symmetric, per output channel (axis 0) or per tensor, as initializers + DequantizeLinear;</item>
/// <item>Conv bias: int32, scale = input scale · weight scale[c], zero point 0, + DequantizeLinear;</item>
/// <item>activations: uint8, asymmetric, one QuantizeLinear per tensor and one DequantizeLinear per consumer, on every
/// Conv input and output and Add input and output. Where a Conv or Add output feeds only a Relu, the Relu's output is
/// quantized instead: its range starts at 0, so the zero point is 0 and ORT drops the Relu (ReluQuantFusion);</item>
/// <item>MaxPool after a quantized tensor gets a QuantizeLinear with its input's scale and zero point, which ORT drops
/// with the DQ in front to run MaxPool on uint8;</item>
/// <item>everything else (the preprocessing in front of the base, the pooling and flatten after it) stays fp32.</item>
/// </list>
/// The model's default opset is raised to 13 (per-axis DequantizeLinear) where the graph's ops mean the same there, and its
/// IR version to 7, with initializers taken out of the graph inputs so that ORT treats them as constants.
/// <para>
/// Verified with ONNX Runtime 1.31.1 CPU (SessionOptions.OptimizedModelFilePath at ORT_ENABLE_ALL, checked by
/// Int8QuantizerTests): on the composed resnet18 graph all 22 Convs become com.microsoft QLinearConv (NHWC, uint8 activations,
/// int8 weights), the 9 Adds QLinearAdd, MaxPool NhwcMaxPool
/// on uint8; no Relu, BatchNormalization, Conv or per-layer Q/DQ is left. What stays fp32: the preprocessing (Gather,
/// Sub), one QuantizeLinear + Transpose in front of the first QLinearConv, one DequantizeLinear before the final
/// AveragePool / GlobalAveragePool / Flatten. Weights stay int8 (u8s8 kernels) unless the session sets
/// <c>session.x64quantprecision</c> = 1, which makes ORT convert them to uint8 (u8u8: no saturation, but measured 1.33× fp32 here instead of 1.8×).
/// </para>
/// </summary>
internal static class Int8Quantizer
{
    private const int QuantizedOpset = 13;
    private const long MinIrVersion = 7;

    /// <summary>
    /// Quantizes <paramref name="fp32"/> (not modified) into a new QDQ model with the same input and output names.
    /// </summary>
    /// <param name="fp32">A float model with one image input [n, 3, height, width] (a composed featurizer graph).</param>
    /// <param name="calibrationBatches">Pixel batches in the model's input format, each n·3·height·width floats, streamed.</param>
    /// <param name="height">Input height.</param>
    /// <param name="width">Input width.</param>
    /// <param name="options">Options; default <see cref="Int8QuantizationOptions"/>.</param>
    public static ModelProto Quantize(ModelProto fp32, IEnumerable<float[]> calibrationBatches, int height, int width, Int8QuantizationOptions? options = null) =>
        Quantize(fp32, calibrationBatches, height, width, options, out _);

    /// <summary>
    /// Quantizes <paramref name="fp32"/> (not modified) into a new QDQ model with the same input and output names, and says what it did.
    /// </summary>
    /// <param name="fp32">A float model with one image input [n, 3, height, width] (a composed featurizer graph).</param>
    /// <param name="calibrationBatches">Pixel batches in the model's input format, each n·3·height·width floats, streamed.</param>
    /// <param name="height">Input height.</param>
    /// <param name="width">Input width.</param>
    /// <param name="options">Options; default <see cref="Int8QuantizationOptions"/>.</param>
    /// <param name="report">What was quantized and the calibrated ranges.</param>
    public static ModelProto Quantize(ModelProto fp32, IEnumerable<float[]> calibrationBatches, int height, int width,
        Int8QuantizationOptions? options, out Int8QuantizationReport report)
    {
        ArgumentNullException.ThrowIfNull(fp32);
        ArgumentNullException.ThrowIfNull(calibrationBatches);
        options ??= new Int8QuantizationOptions();
        if (options.CalibrationImages < 1)
            throw new ArgumentOutOfRangeException(nameof(options), "CalibrationImages must be at least 1");
        if (options.Percentile is <= 50 or > 100)
            throw new ArgumentOutOfRangeException(nameof(options), "Percentile must be in (50, 100]");

        var model = fp32.Clone();
        var graph = model.Graph;
        var inputs = OnnxGraph.RealInputs(graph);
        var input = inputs.FirstOrDefault(i => i.Name == FeaturizerGraphBuilder.PixelsTensor)
                    ?? (inputs.Count == 1 ? inputs[0] : throw new ArgumentException($"the model has {inputs.Count} inputs; one image input is expected", nameof(fp32)));

        RaiseOpset(model);
        int folded = ConvBatchNormFolding.Fold(graph);
        OnnxGraph.PruneTo(graph, graph.Output.Select(o => o.Name).ToList());

        var plan = QuantizationPlan.Make(graph, options.QuantizeAdd);
        var ranges = ActivationCalibration.Collect(model, input.Name, plan.Activations, calibrationBatches, height, width,
            options.CalibrationImages, options.Calibration, options.Percentile, options.CalibrationThreads, out int imagesSeen);

        var activationParams = new Dictionary<string, QuantParams>(StringComparer.Ordinal);
        foreach (var tensor in plan.Activations)
        {
            var r = ranges[tensor];
            activationParams[tensor] = QuantParams.Uint8(r.ClippedMin, r.ClippedMax);
        }
        foreach (var (output, source) in plan.SharedParams)
            activationParams[output] = activationParams[source];

        Rewrite(graph, plan, activationParams, options);
        OnnxGraph.PruneTo(graph, graph.Output.Select(o => o.Name).ToList());

        var description = string.Create(CultureInfo.InvariantCulture,
            $"int8 QDQ: {plan.Convs.Count} Conv ({(options.PerChannelWeights ? "per-channel" : "per-tensor")} {(options.ReduceRange ? "7-bit" : "8-bit")} weights), " +
            $"{plan.Activations.Count} uint8 activations, {options.Calibration}{(options.Calibration == CalibrationMethod.Percentile ? " " + options.Percentile : "")} " +
            $"calibration on {imagesSeen} images, {folded} BatchNormalization folded");
        model.DocString = fp32.DocString.Length > 0 ? fp32.DocString + " | " + description : description;
        report = new Int8QuantizationReport(plan.Convs.Count, folded, imagesSeen,
            plan.Activations.Select(t => (t, ranges[t], activationParams[t])).ToDictionary(x => x.t, x => new QuantizedTensor(x.Item2, x.Item3.Scale, x.Item3.ZeroPoint)),
            description);
        return model;
    }

    /// <summary>Ops whose meaning (for the attributes a conv base uses) is the same from opset 7 to 13.</summary>
    private static readonly HashSet<string> StableOps =
    [
        "Conv", "BatchNormalization", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Add", "Sub", "Mul", "Div", "Sum",
        "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Flatten", "Gather", "Identity", "Transpose",
        "Concat", "Reshape", "Gemm", "MatMul", "LRN",
    ];

    /// <summary>Raises the default-domain opset to 13 and the IR version to 7 (initializers then stop being graph inputs).</summary>
    private static void RaiseOpset(ModelProto model)
    {
        var graph = model.Graph;
        var opset = model.OpsetImport.FirstOrDefault(o => o.Domain is "" or "ai.onnx");
        if (opset is null)
            model.OpsetImport.Add(opset = new OperatorSetIdProto { Domain = "", Version = QuantizedOpset });
        if (opset.Version < QuantizedOpset)
        {
            if (opset.Version < 7)
                throw new NotSupportedException($"the model's opset {opset.Version} is too old to quantize (7 or newer is needed)");
            var unknown = graph.Node.Where(n => n.Domain is not ("" or "ai.onnx") || !StableOps.Contains(n.OpType)).Select(n => n.OpType).Distinct().ToList();
            if (unknown.Count > 0)
                throw new NotSupportedException($"the model is opset {opset.Version} and its ops {string.Join(", ", unknown)} may mean something else at opset {QuantizedOpset}, which int8 QDQ needs");
            foreach (var bn in graph.Node.Where(n => n.OpType == "BatchNormalization"))
            {
                // 'spatial' (opset < 9) is gone at 13; spatial = 1 is what BatchNormalization does there.
                var spatial = bn.Attribute.FirstOrDefault(a => a.Name == "spatial");
                if (spatial is { I: 0 })
                    throw new NotSupportedException($"BatchNormalization '{bn.Name}' has spatial = 0, which opset {QuantizedOpset} cannot express");
                if (spatial is not null)
                    bn.Attribute.Remove(spatial);
            }
            opset.Version = QuantizedOpset;
        }
        model.IrVersion = Math.Max(model.IrVersion, MinIrVersion);
        // From IR 4 an initializer that is also a graph input may be overridden, so ORT would not treat it as a constant.
        var initializers = graph.Initializer.Select(i => i.Name).ToHashSet();
        foreach (var listed in graph.Input.Where(i => initializers.Contains(i.Name)).ToList())
            graph.Input.Remove(listed);
    }

    private static void Rewrite(GraphProto graph, QuantizationPlan plan, IReadOnlyDictionary<string, QuantParams> activations, Int8QuantizationOptions options)
    {
        var names = TensorNames.Of(graph);
        var initializers = graph.Initializer.ToDictionary(i => i.Name);
        var quantized = new Dictionary<string, (string Q, string Scale, string ZeroPoint)>(StringComparer.Ordinal);
        var nodes = new List<NodeProto>();
        var graphOutputs = graph.Output.Select(o => o.Name).ToHashSet();

        void QuantizeAfter(string tensor)
        {
            var p = activations[tensor];
            var scale = names.Fresh(tensor + "_scale");
            var zeroPoint = names.Fresh(tensor + "_zero_point");
            var q = names.Fresh(tensor + "_quantized");
            graph.Initializer.Add(OnnxGraph.FloatTensor(scale, [], [p.Scale]));
            graph.Initializer.Add(Uint8Tensor(zeroPoint, [], [p.ZeroPoint]));
            nodes.Add(OnnxGraph.Node("QuantizeLinear", names.Fresh(tensor + "_QuantizeLinear"), [tensor, scale, zeroPoint], [q]));
            quantized[tensor] = (q, scale, zeroPoint);
        }

        foreach (var input in graph.Input.Where(i => activations.ContainsKey(i.Name)))
            QuantizeAfter(input.Name);

        foreach (var node in graph.Node.ToList())
        {
            string firstInput = node.Input.Count > 0 ? node.Input[0] : "";
            // One DequantizeLinear per consumer input, as ORT's tool writes them, so every node unit owns its DQ.
            for (int i = 0; i < node.Input.Count; i++)
            {
                if (!quantized.TryGetValue(node.Input[i], out var q))
                    continue;
                var dq = names.Fresh(node.Input[i] + "_dequantized");
                nodes.Add(OnnxGraph.Node("DequantizeLinear", names.Fresh(dq + "_DequantizeLinear"), [q.Q, q.Scale, q.ZeroPoint], [dq]));
                node.Input[i] = dq;
            }
            if (plan.Convs.Contains(node))
                nodes.AddRange(QuantizeConvParameters(graph, node, initializers, activations[firstInput].Scale, names, options));
            nodes.Add(node);
            foreach (var output in node.Output.Where(activations.ContainsKey))
            {
                if (graphOutputs.Contains(output))
                    throw new InvalidOperationException($"graph output '{output}' was planned for quantization");
                QuantizeAfter(output);
            }
        }
        graph.Node.Clear();
        graph.Node.AddRange(nodes);
    }

    /// <summary>Replaces a Conv's float weight and bias inputs with int8 / int32 initializers and DequantizeLinear nodes.</summary>
    private static List<NodeProto> QuantizeConvParameters(GraphProto graph, NodeProto conv, Dictionary<string, TensorProto> initializers,
        float inputScale, TensorNames names, Int8QuantizationOptions options)
    {
        var nodes = new List<NodeProto>();
        var weightTensor = initializers[conv.Input[1]];
        var weights = OnnxGraph.ReadFloats(weightTensor);
        int channels = checked((int)weightTensor.Dims[0]);
        int perChannel = weights.Length / channels;
        int groups = options.PerChannelWeights ? channels : 1;
        int perGroup = weights.Length / groups;
        // Symmetric int8: −127..127, or −64..64 with reduce range (ORT's get_qmin_qmax_for_qType).
        float qmax = options.ReduceRange ? 64f : 127f;

        var scales = new float[groups];
        var q = new sbyte[weights.Length];
        for (int g = 0; g < groups; g++)
        {
            var slice = weights.AsSpan(g * perGroup, perGroup);
            float absMax = System.Numerics.Tensors.TensorPrimitives.MaxMagnitude(slice);
            absMax = Math.Abs(absMax);
            // ORT's compute_scale_zp: (rmax − rmin) / (qmax − qmin) with the range made symmetric.
            float scale = absMax > 0 ? 2f * absMax / (2f * qmax) : 1f;
            scales[g] = scale;
            for (int i = 0; i < perGroup; i++)
                q[g * perGroup + i] = (sbyte)Math.Clamp(MathF.Round(slice[i] / scale, MidpointRounding.ToEven), -qmax, qmax);
        }
        var stem = conv.Input[1];
        var wq = names.Fresh(stem + "_quantized");
        var wScale = names.Fresh(stem + "_scale");
        var wZero = names.Fresh(stem + "_zero_point");
        long[] paramDims = options.PerChannelWeights ? [channels] : [];
        graph.Initializer.Add(Int8Tensor(wq, weightTensor.Dims.ToArray(), q));
        graph.Initializer.Add(OnnxGraph.FloatTensor(wScale, paramDims, scales));
        graph.Initializer.Add(Int8Tensor(wZero, paramDims, new sbyte[groups]));
        var wDq = names.Fresh(stem + "_dequantized");
        nodes.Add(OnnxGraph.Node("DequantizeLinear", names.Fresh(wDq + "_DequantizeLinear"), [wq, wScale, wZero], [wDq],
            options.PerChannelWeights ? [OnnxGraph.Int("axis", 0)] : []));
        conv.Input[1] = wDq;

        if (conv.Input.Count > 2 && conv.Input[2].Length > 0)
        {
            var biasTensor = initializers[conv.Input[2]];
            var bias = OnnxGraph.ReadFloats(biasTensor);
            var bScales = new float[channels];
            var bq = new int[channels];
            for (int c = 0; c < channels; c++)
            {
                float s = inputScale * scales[options.PerChannelWeights ? c : 0];
                bScales[c] = s;
                bq[c] = (int)Math.Clamp(Math.Round((double)bias[c] / s, MidpointRounding.ToEven), int.MinValue, int.MaxValue);
            }
            var bStem = conv.Input[2];
            var bqName = names.Fresh(bStem + "_quantized");
            var bScale = names.Fresh(bStem + "_scale");
            var bZero = names.Fresh(bStem + "_zero_point");
            graph.Initializer.Add(Int32Tensor(bqName, [channels], bq));
            graph.Initializer.Add(OnnxGraph.FloatTensor(bScale, [channels], bScales));
            graph.Initializer.Add(Int32Tensor(bZero, [channels], new int[channels]));
            var bDq = names.Fresh(bStem + "_dequantized");
            nodes.Add(OnnxGraph.Node("DequantizeLinear", names.Fresh(bDq + "_DequantizeLinear"), [bqName, bScale, bZero], [bDq], OnnxGraph.Int("axis", 0)));
            conv.Input[2] = bDq;
        }
        return nodes;
    }

    private static TensorProto Uint8Tensor(string name, long[] dims, byte[] values)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Uint8 };
        t.Dims.AddRange(dims);
        t.RawData = ByteString.CopyFrom(values);
        return t;
    }

    private static TensorProto Int8Tensor(string name, long[] dims, sbyte[] values)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int8 };
        t.Dims.AddRange(dims);
        t.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values.AsSpan()));
        return t;
    }

    private static TensorProto Int32Tensor(string name, long[] dims, int[] values)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int32 };
        t.Dims.AddRange(dims);
        t.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values.AsSpan()));
        return t;
    }
}

/// <summary>Scale and zero point of a uint8 tensor.</summary>
internal readonly record struct QuantParams(float Scale, byte ZeroPoint)
{
    /// <summary>ORT's compute_scale_zp for uint8: the range is widened to hold 0, scale = (max − min) / 255.</summary>
    public static QuantParams Uint8(float min, float max)
    {
        min = Math.Min(min, 0f);
        max = Math.Max(max, 0f);
        float scale = (max - min) / 255f;
        if (!(scale > 0) || !float.IsFinite(scale))
            return new QuantParams(1f, 0);
        var zeroPoint = (byte)Math.Clamp(MathF.Round(-min / scale, MidpointRounding.ToEven), 0f, 255f);
        return new QuantParams(scale, zeroPoint);
    }
}

/// <summary>What <see cref="Int8Quantizer"/> did.</summary>
/// <param name="QuantizedConvs">Conv nodes with int8 weights.</param>
/// <param name="FoldedBatchNorms">BatchNormalization nodes folded into Convs.</param>
/// <param name="CalibrationImages">Images the ranges were taken from.</param>
/// <param name="Activations">Each uint8 activation tensor: its calibrated range, scale and zero point.</param>
/// <param name="Description">One line, also written into the model's doc string.</param>
internal sealed record Int8QuantizationReport(int QuantizedConvs, int FoldedBatchNorms, int CalibrationImages,
    IReadOnlyDictionary<string, QuantizedTensor> Activations, string Description);

/// <summary>A uint8 activation tensor of a quantized model.</summary>
internal sealed record QuantizedTensor(TensorRange Range, float Scale, byte ZeroPoint);

/// <summary>Which tensors and Convs a graph's quantization covers.</summary>
internal sealed class QuantizationPlan
{
    /// <summary>Float activation tensors to quantize, in graph order.</summary>
    public required List<string> Activations { get; init; }

    /// <summary>Tensors whose scale and zero point are those of another (MaxPool output → input).</summary>
    public required List<(string Output, string Source)> SharedParams { get; init; }

    /// <summary>Convs whose weights (and bias) become int8 (int32).</summary>
    public required HashSet<NodeProto> Convs { get; init; }

    public static QuantizationPlan Make(GraphProto graph, bool quantizeAdd)
    {
        var initializers = graph.Initializer.ToDictionary(i => i.Name);
        var graphOutputs = graph.Output.Select(o => o.Name).ToHashSet();
        var consumers = new Dictionary<string, List<NodeProto>>(StringComparer.Ordinal);
        foreach (var node in graph.Node)
            foreach (var input in node.Input.Where(i => i.Length > 0))
            {
                if (!consumers.TryGetValue(input, out var list))
                    consumers[input] = list = [];
                list.Add(node);
            }

        var chosen = new HashSet<string>(StringComparer.Ordinal);
        bool IsActivation(string t) => t.Length > 0 && !initializers.ContainsKey(t) && !graphOutputs.Contains(t);
        bool Choose(string t)
        {
            if (!IsActivation(t))
                return false;
            chosen.Add(t);
            return true;
        }
        // A tensor that only feeds a Relu is quantized after the Relu: range ≥ 0, zero point 0, and ORT fuses the Relu away.
        string ThroughRelu(string t) =>
            consumers.TryGetValue(t, out var c) && c.Count == 1 && c[0].OpType == "Relu" && !graphOutputs.Contains(t) && IsActivation(c[0].Output[0])
                ? c[0].Output[0] : t;
        bool IsFloatInitializer(string t) => initializers.TryGetValue(t, out var i) && i.DataType == (int)TensorProto.Types.DataType.Float;

        var convs = new HashSet<NodeProto>(ReferenceEqualityComparer.Instance);
        foreach (var node in graph.Node.Where(n => n.Domain is "" or "ai.onnx"))
        {
            switch (node.OpType)
            {
                case "Conv" when node.Input.Count >= 2 && IsActivation(node.Input[0]) && IsFloatInitializer(node.Input[1])
                                 && initializers[node.Input[1]].Dims.Count >= 3
                                 && (node.Input.Count < 3 || node.Input[2].Length == 0 || IsFloatInitializer(node.Input[2])):
                    Choose(node.Input[0]);
                    Choose(ThroughRelu(node.Output[0]));
                    convs.Add(node);
                    break;
                case "Add" when quantizeAdd && node.Input.Count == 2 && IsActivation(node.Input[0]) && IsActivation(node.Input[1]):
                    Choose(node.Input[0]);
                    Choose(node.Input[1]);
                    Choose(ThroughRelu(node.Output[0]));
                    break;
            }
        }

        // MaxPool passes uint8 through: its output takes its input's parameters (repeat for chains of them).
        var shared = new List<(string, string)>();
        bool changed = true;
        while (changed)
        {
            changed = false;
            foreach (var pool in graph.Node.Where(n => n.OpType == "MaxPool" && n.Output.Count == 1 && n.Domain is "" or "ai.onnx"))
            {
                if (chosen.Contains(pool.Input[0]) && IsActivation(pool.Output[0]) && !shared.Any(s => s.Item1 == pool.Output[0]))
                {
                    chosen.Add(pool.Output[0]);
                    shared.Add((pool.Output[0], pool.Input[0]));
                    changed = true;
                }
            }
        }

        // Graph order, so the calibration outputs and the rewritten model are the same on every run.
        var ordered = graph.Input.Select(i => i.Name).Concat(graph.Node.SelectMany(n => n.Output)).Where(chosen.Contains).Distinct().ToList();
        var sharedOrdered = ordered.Select(t => shared.FirstOrDefault(s => s.Item1 == t)).Where(s => s.Item1 is not null).ToList();
        return new QuantizationPlan { Activations = ordered, SharedParams = sharedOrdered, Convs = convs };
    }
}
