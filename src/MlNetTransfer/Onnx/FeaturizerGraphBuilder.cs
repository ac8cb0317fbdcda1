using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using MlNetTransfer.Backbones;
using Google.Protobuf;
using Onnx;

namespace MlNetTransfer.Onnx;

/// <summary>
/// Composes one ONNX graph from a preset: preprocessing nodes -> conv base (cut at its output tensor) -> pooling.
/// Its input is what ML.NET's <c>ExtractPixels</c> gives by default (planar RGB floats in 0..255), its output a
/// feature vector, so one ApplyOnnxModel step (one ORT session) featurizes, in training and in the saved model alike.
/// </summary>
internal static class FeaturizerGraphBuilder
{
    /// <summary>Graph input: [batch, 3, height, width] RGB, 0..255.</summary>
    public const string PixelsTensor = "ImagePixels";

    /// <summary>Graph output: [batch, features].</summary>
    public const string FeaturesTensor = "Features";

    private const string Prefix = "mlnt_";

    /// <summary>The node that hands preprocessed pixels to the conv base; its output is the base's own input tensor.</summary>
    public const string IntoBaseNode = Prefix + "into_base";

    /// <summary>The conv base's input tensor in a composed graph (the freeze boundary when every block trains).</summary>
    public static string BaseInputTensor(ModelProto composed) =>
        composed.Graph.Node.FirstOrDefault(n => n.Name == IntoBaseNode)?.Output[0]
        ?? throw new ConvBaseException("not a graph composed by MlNetTransfer (no preprocessing hand-over node)");

    /// <summary>Builds the composed graph. The base's own fixed input size, if it has one, wins over the spec's.</summary>
    public static FeaturizerGraph Build(ConvBasePreset preset)
    {
        var modelFile = preset.RequireModelFile();
        var model = OnnxGraph.Load(modelFile);
        var graph = model.Graph;

        var inputs = OnnxGraph.RealInputs(graph);
        string inputName = preset.InputName ?? (inputs.Count == 1
            ? inputs[0].Name
            : throw new ConvBaseException($"'{modelFile}' has {inputs.Count} inputs ({string.Join(", ", inputs.Select(i => i.Name))}): name one in the spec's \"input\"."));
        var input = inputs.FirstOrDefault(i => i.Name == inputName)
                    ?? throw new ConvBaseException($"'{modelFile}' has no input '{inputName}' (inputs: {string.Join(", ", inputs.Select(i => i.Name))}).");
        string outputName = preset.OutputName ?? graph.Output[0].Name;
        if (!graph.Node.Any(n => n.Output.Contains(outputName)))
            throw new ConvBaseException($"'{modelFile}' has no tensor '{outputName}' to use as the conv-base output.");

        var spec = FitSpecToInput(preset, modelFile, input);

        // Cut the base at its output and detach its input: the preprocessing nodes feed it instead.
        OnnxGraph.PruneTo(graph, [outputName]);
        graph.Input.Remove(input);
        graph.Output.Clear();
        graph.ValueInfo.Clear(); // exporters' shapes carry a fixed batch; ORT infers them again.

        var prep = PreprocessingNodes(spec, inputName, modelFile);
        for (int i = prep.Nodes.Count - 1; i >= 0; i--)
            graph.Node.Insert(0, prep.Nodes[i]);
        graph.Initializer.AddRange(prep.Initializers);
        graph.Input.Insert(0, OnnxGraph.FloatValueInfo(PixelsTensor, "batch", 3, spec.Height, spec.Width));

        // Learn the base output's shape by running it once, then append pooling for that shape.
        var baseShape = ProbeShape(model, outputName, spec, modelFile);
        var pooled = PoolingNodes(preset.Pooling, spec.Layout, outputName, baseShape, out int featureLength);
        graph.Node.AddRange(pooled);
        graph.Output.Add(OnnxGraph.FloatValueInfo(FeaturesTensor, "batch", featureLength));
        graph.Name = $"mlnettransfer_{preset.Name}";
        model.ProducerName = "MlNetTransfer";
        model.DocString = $"Conv base '{preset.Name}' with preprocessing folded in: {spec.Describe()}; pooling {preset.Pooling}. Input {PixelsTensor} = planar RGB 0..255.";
        return new FeaturizerGraph(model, preset with { Preprocessing = spec }, featureLength, baseShape);
    }

    private static PreprocessingSpec FitSpecToInput(ConvBasePreset preset, string modelFile, ValueInfoProto input)
    {
        var spec = preset.Preprocessing;
        var dims = input.Type?.TensorType?.Shape?.Dim;
        if (dims is null || dims.Count != 4)
            throw new ConvBaseException($"'{modelFile}': input '{input.Name}' is not a 4-D image tensor (layout {spec.Layout} expected).");
        long Dim(int i) => dims[i].ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue ? dims[i].DimValue : -1;
        var (c, h, w) = spec.Layout == TensorLayout.NCHW ? (Dim(1), Dim(2), Dim(3)) : (Dim(3), Dim(1), Dim(2));
        if (c > 0 && c != 3)
            throw new ConvBaseException($"'{modelFile}': input '{input.Name}' has {c} channels where 3 are expected for layout {spec.Layout}; check the spec's \"layout\".");
        return spec with { Height = h > 0 ? (int)h : spec.Height, Width = w > 0 ? (int)w : spec.Width };
    }

    private static (List<NodeProto> Nodes, List<TensorProto> Initializers) PreprocessingNodes(PreprocessingSpec spec, string baseInput, string modelFile)
    {
        var nodes = new List<NodeProto>();
        var inits = new List<TensorProto>();
        string x = PixelsTensor;

        string Step(string op, string name, IEnumerable<string> extraInputs, params AttributeProto[] attributes)
        {
            var output = Prefix + name;
            nodes.Add(OnnxGraph.Node(op, Prefix + name, new[] { x }.Concat(extraInputs), [output], attributes));
            return x = output;
        }

        if (spec.ChannelOrder == ChannelOrder.BGR)
        {
            inits.Add(OnnxGraph.Int64Tensor(Prefix + "bgr_index", [3], [2L, 1L, 0L]));
            Step("Gather", "to_bgr", [Prefix + "bgr_index"], OnnxGraph.Int("axis", 1));
        }
        if (spec.Scale != 1f)
        {
            inits.Add(OnnxGraph.FloatTensor(Prefix + "scale", [], [spec.Scale]));
            Step("Mul", "scaled", [Prefix + "scale"]);
        }
        if (spec.MeanImage is { } meanImage)
        {
            inits.Add(OnnxGraph.FloatTensor(Prefix + "mean_image", [1, 3, spec.Height, spec.Width], ReadMeanImage(meanImage, spec)));
            Step("Sub", "centered", [Prefix + "mean_image"]);
        }
        else if (spec.Mean.Any(m => m != 0f))
        {
            inits.Add(OnnxGraph.FloatTensor(Prefix + "mean", [1, 3, 1, 1], spec.Mean));
            Step("Sub", "centered", [Prefix + "mean"]);
        }
        if (spec.Std.Any(s => s != 1f))
        {
            inits.Add(OnnxGraph.FloatTensor(Prefix + "std", [1, 3, 1, 1], spec.Std));
            Step("Div", "normalized", [Prefix + "std"]);
        }
        if (spec.Layout == TensorLayout.NHWC)
            Step("Transpose", "nhwc", [], OnnxGraph.Ints("perm", 0, 2, 3, 1));

        nodes.Add(OnnxGraph.Node("Identity", IntoBaseNode, [x], [baseInput]));
        return (nodes, inits);
    }

    private static float[] ReadMeanImage(MeanImageReference reference, PreprocessingSpec spec)
    {
        var source = OnnxGraph.Load(reference.OnnxFile);
        var tensor = source.Graph.Initializer.FirstOrDefault(t => t.Name == reference.Initializer)
                     ?? throw new ConvBaseException($"'{reference.OnnxFile}' has no initializer '{reference.Initializer}' (the mean image).");
        long[] expected = [1, 3, spec.Height, spec.Width];
        if (!tensor.Dims.SequenceEqual(expected))
            throw new ConvBaseException($"Mean image '{reference.Initializer}' in '{reference.OnnxFile}' is [{string.Join(",", tensor.Dims)}], expected [{string.Join(",", expected)}].");
        return OnnxGraph.ReadFloats(tensor);
    }

    private static long[] ProbeShape(ModelProto model, string outputName, PreprocessingSpec spec, string modelFile)
    {
        var probe = model.Clone();
        probe.Graph.Output.Clear();
        probe.Graph.Output.Add(new ValueInfoProto
        {
            Name = outputName,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float } },
        });
        try
        {
            using var options = new SessionOptions { IntraOpNumThreads = 1, LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR };
            using var session = new InferenceSession(probe.ToByteArray(), options);
            var pixels = new DenseTensor<float>([1, 3, spec.Height, spec.Width]);
            using var results = session.Run([NamedOnnxValue.CreateFromTensor(PixelsTensor, pixels)]);
            return results[0].AsTensor<float>().Dimensions.ToArray().Select(d => (long)d).ToArray();
        }
        catch (OnnxRuntimeException e)
        {
            throw new ConvBaseException($"'{modelFile}' does not run with the preprocessing spec ({spec.Describe()}): {e.Message}", e);
        }
    }

    private static List<NodeProto> PoolingNodes(FeaturePooling pooling, TensorLayout layout, string baseOutput, long[] shape, out int featureLength)
    {
        var nodes = new List<NodeProto>();
        if (shape.Length == 2)
        {
            featureLength = checked((int)shape[1]);
            nodes.Add(OnnxGraph.Node("Identity", Prefix + "features", [baseOutput], [FeaturesTensor]));
            return nodes;
        }
        if (shape.Length != 4)
            throw new ConvBaseException($"Conv-base output '{baseOutput}' has rank {shape.Length}; a 2-D or 4-D tensor is expected.");

        string x = baseOutput;
        if (pooling == FeaturePooling.Flatten)
        {
            featureLength = checked((int)(shape[1] * shape[2] * shape[3]));
            nodes.Add(OnnxGraph.Node("Flatten", Prefix + "flatten", [x], [FeaturesTensor], OnnxGraph.Int("axis", 1)));
            return nodes;
        }
        if (layout == TensorLayout.NHWC)
        {
            nodes.Add(OnnxGraph.Node("Transpose", Prefix + "to_nchw", [x], [Prefix + "to_nchw"], OnnxGraph.Ints("perm", 0, 3, 1, 2)));
            x = Prefix + "to_nchw";
        }
        featureLength = checked((int)(layout == TensorLayout.NHWC ? shape[3] : shape[1]));
        var op = pooling == FeaturePooling.Max ? "GlobalMaxPool" : "GlobalAveragePool";
        nodes.Add(OnnxGraph.Node(op, Prefix + "pool", [x], [Prefix + "pool"]));
        nodes.Add(OnnxGraph.Node("Flatten", Prefix + "flatten", [Prefix + "pool"], [FeaturesTensor], OnnxGraph.Int("axis", 1)));
        return nodes;
    }
}

/// <summary>A composed featurizer graph and what it was built from.</summary>
/// <param name="Model">The ONNX model: <c>ImagePixels</c> [N,3,H,W] -> <c>Features</c> [N,FeatureLength].</param>
/// <param name="Preset">The preset, with the input size the base actually takes.</param>
/// <param name="FeatureLength">Length of the feature vector.</param>
/// <param name="BaseOutputShape">Shape of the conv-base output for one image, before pooling.</param>
internal sealed record FeaturizerGraph(ModelProto Model, ConvBasePreset Preset, int FeatureLength, long[] BaseOutputShape);
