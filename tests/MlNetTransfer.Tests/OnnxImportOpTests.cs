using MlNetTransfer.Onnx;
using MlNetTransfer.Tests.Fixtures;
using MlNetTransfer.TorchSharp.OnnxImport;
using Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace MlNetTransfer.Tests;

/// <summary>Each supported op, with the attribute values that need care, against ONNX Runtime on tiny graphs.</summary>
public class OnnxImportOpTests
{
    public OnnxImportOpTests() => torch.set_num_threads(2);

    private static NodeProto Node(string op, string[] inputs, params AttributeProto[] attributes) =>
        OnnxGraph.Node(op, op.ToLowerInvariant(), inputs, ["y"], attributes);

    private static AttributeProto Ints(string name, params long[] values) => OnnxGraph.Ints(name, values);

    private static AttributeProto Int(string name, long value) => OnnxGraph.Int(name, value);

    private static AttributeProto Float(string name, float value) => OnnxGraph.Float(name, value);

    private static AttributeProto Text(string name, string value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = Google.Protobuf.ByteString.CopyFromUtf8(value) };

    private static TensorProto Int64s(string name, params long[] values) => OnnxGraph.Int64Tensor(name, [values.Length], values);

    /// <summary>Runs one graph x -> y through ORT and the importer and compares (same shape, max abs diff 1e-5 relative).</summary>
    private static void Check(int opset, long[] inputShape, NodeProto node, params TensorProto[] initializers) =>
        Check(opset, inputShape, [node], initializers);

    private static void Check(int opset, long[] inputShape, NodeProto[] nodes, params TensorProto[] initializers)
    {
        var model = OrtReference.Model(opset, inputShape, nodes, initializers);
        var x = OrtReference.Random(inputShape, seed: 11);
        var expected = OrtReference.Run(model, "x", x, "y")[0];
        using var module = new OnnxGraphModule(model, "x", "y");
        using var input = x.ToTorch();
        using var y = module.forward(input);
        var actual = OrtReference.Values.Of(y);
        var what = $"{string.Join("+", nodes.Select(n => n.OpType))} ({string.Join(" ", nodes.SelectMany(n => n.Attribute).Select(a => a.Name))}) opset {opset}";
        Assert.True(expected.Shape.SequenceEqual(actual.Shape), $"{what}: shape [{string.Join(",", actual.Shape)}], ORT [{string.Join(",", expected.Shape)}]");
        double diff = actual.MaxAbsDiff(expected);
        Assert.True(diff <= 1e-5 * Math.Max(1, expected.MaxAbs), $"{what}: max abs diff {diff}");
    }

    [Fact]
    public void ConvPaddingStridesDilationsGroups()
    {
        var w = OrtReference.Floats("w", [4, 2, 3, 3], 1);
        var b = OrtReference.Floats("b", [4], 2);
        // CNTK's lopsided stem pads: equal to symmetric ones on an even input, not on an odd one.
        var w7 = OrtReference.Floats("w", [4, 2, 7, 7], 3);
        Check(8, [2, 2, 16, 16], Node("Conv", ["x", "w"], Ints("kernel_shape", 7, 7), Ints("strides", 2, 2), Ints("pads", 3, 3, 2, 2)), w7);
        Check(8, [2, 2, 15, 15], Node("Conv", ["x", "w"], Ints("kernel_shape", 7, 7), Ints("strides", 2, 2), Ints("pads", 3, 3, 2, 2)), w7);
        Check(13, [1, 2, 9, 8], Node("Conv", ["x", "w", "b"], Ints("pads", 0, 2, 1, 0)), w, b);
        Check(13, [1, 2, 9, 8], Node("Conv", ["x", "w", "b"], Ints("pads", 1, 1, 0, 0), Ints("strides", 2, 2)), w, b);
        Check(13, [1, 2, 11, 10], Node("Conv", ["x", "w", "b"], Ints("dilations", 2, 1), Ints("pads", 2, 1, 2, 1), Ints("strides", 1, 2)), w, b);
        Check(13, [1, 4, 8, 8], Node("Conv", ["x", "w", "b"], Int("group", 2), Ints("pads", 1, 1, 1, 1)), w, b);
        foreach (var autoPad in new[] { "SAME_UPPER", "SAME_LOWER", "VALID" })
            foreach (var size in new long[] { 8, 9 })
                Check(11, [1, 2, size, size], Node("Conv", ["x", "w"], Text("auto_pad", autoPad), Ints("strides", 2, 2)), w);
        Check(13, [2, 2, 12], Node("Conv", ["x", "w"], Ints("pads", 2, 1), Ints("strides", 2)), OrtReference.Floats("w", [3, 2, 3], 4));
    }

    [Fact]
    public void MaxPoolPadsWithMinusInfinity()
    {
        // Inputs in [-1, 1): zero padding would win some windows, -inf must not.
        Check(8, [1, 2, 8, 8], Node("MaxPool", ["x"], Ints("kernel_shape", 3, 3), Ints("strides", 2, 2), Ints("pads", 1, 1, 0, 0)));
        Check(8, [1, 2, 7, 7], Node("MaxPool", ["x"], Ints("kernel_shape", 3, 3), Ints("strides", 2, 2), Ints("pads", 0, 0, 2, 2)));
        Check(11, [1, 2, 7, 7], Node("MaxPool", ["x"], Ints("kernel_shape", 2, 2), Ints("strides", 2, 2), Int("ceil_mode", 1)));
        Check(11, [1, 2, 9, 9], Node("MaxPool", ["x"], Ints("kernel_shape", 3, 3), Ints("strides", 2, 2), Ints("pads", 1, 1, 1, 1), Int("ceil_mode", 1)));
        Check(11, [1, 2, 9, 8], Node("MaxPool", ["x"], Ints("kernel_shape", 3, 3), Ints("strides", 2, 2), Text("auto_pad", "SAME_UPPER")));
        Check(11, [1, 2, 9, 8], Node("MaxPool", ["x"], Ints("kernel_shape", 2, 2), Ints("dilations", 2, 2)));
        Check(13, [1, 2, 10], Node("MaxPool", ["x"], Ints("kernel_shape", 3), Ints("strides", 2), Ints("pads", 1, 0)));
    }

    [Fact]
    public void AveragePoolCountsPaddingAsAsked()
    {
        foreach (var include in new long[] { 0, 1 })
        {
            Check(11, [1, 2, 8, 8], Node("AveragePool", ["x"], Ints("kernel_shape", 3, 3), Ints("pads", 1, 1, 1, 1), Int("count_include_pad", include)));
            Check(11, [1, 2, 8, 8], Node("AveragePool", ["x"], Ints("kernel_shape", 3, 3), Ints("strides", 2, 2), Ints("pads", 0, 1, 2, 0), Int("count_include_pad", include)));
            Check(11, [1, 2, 7, 7], Node("AveragePool", ["x"], Ints("kernel_shape", 3, 3), Ints("strides", 2, 2), Text("auto_pad", "SAME_LOWER"), Int("count_include_pad", include)));
        }
        Check(11, [1, 2, 7, 7], Node("AveragePool", ["x"], Ints("kernel_shape", 2, 2), Ints("strides", 2, 2), Int("ceil_mode", 1)));
        Check(8, [1, 2, 7, 7], Node("AveragePool", ["x"], Ints("kernel_shape", 7, 7)));
        Check(8, [2, 3, 5, 4], Node("GlobalAveragePool", ["x"]));
        Check(8, [2, 3, 5, 4], Node("GlobalMaxPool", ["x"]));
    }

    [Fact]
    public void ElementwiseOpsBroadcastAndActivations()
    {
        var perChannel = OrtReference.Floats("c", [1, 3, 1, 1], 5);
        var scalar = OnnxGraph.FloatTensor("c", [], [2.5f]);
        foreach (var op in new[] { "Add", "Sub", "Mul", "Div" })
        {
            Check(8, [2, 3, 4, 4], Node(op, ["x", "c"]), perChannel);
            Check(13, [2, 3, 4, 4], Node(op, ["c", "x"]), scalar);
        }
        Check(8, [2, 3, 4, 4], Node("Add", ["x", "x"]));
        Check(8, [2, 3], Node("Relu", ["x"]));
        Check(8, [2, 3], Node("Sigmoid", ["x"]));
        Check(8, [2, 3], Node("LeakyRelu", ["x"]));
        Check(8, [2, 3], Node("LeakyRelu", ["x"], Float("alpha", 0.2f)));
        Check(8, [2, 3], Node("Clip", ["x"], Float("min", -0.5f), Float("max", 0.25f)));
        Check(11, [2, 3], Node("Clip", ["x", "lo", "hi"]), OnnxGraph.FloatTensor("lo", [], [0f]), OnnxGraph.FloatTensor("hi", [], [0.5f]));
        Check(11, [2, 3], Node("Clip", ["x", "", "hi"]), OnnxGraph.FloatTensor("hi", [], [0.1f]));
        Check(8, [2, 3], Node("Dropout", ["x"], Float("ratio", 0.5f)));
        Check(13, [2, 3], Node("Identity", ["x"]));
    }

    [Fact]
    public void MatrixOps()
    {
        var b = OrtReference.Floats("b", [5, 4], 6);
        var bT = OrtReference.Floats("b", [4, 5], 7);
        Check(8, [3, 4], Node("Gemm", ["x", "b", "c"], Int("transB", 1)), b, OrtReference.Floats("c", [5], 8));
        Check(11, [3, 4], Node("Gemm", ["x", "b"], Int("transB", 1)), b);
        Check(8, [3, 4], Node("Gemm", ["x", "b", "c"], Float("alpha", 0.5f), Float("beta", 2f)), bT, OrtReference.Floats("c", [3, 5], 9));
        Check(8, [4, 3], Node("Gemm", ["x", "b", "c"], Int("transA", 1), Int("transB", 1)), b, OnnxGraph.FloatTensor("c", [1], [0.3f]));
        Check(8, [3, 4], Node("MatMul", ["x", "b"]), bT);
        Check(8, [2, 3, 4], Node("MatMul", ["x", "b"]), bT);
        Check(8, [2, 3, 4], Node("Softmax", ["x"]));
        Check(11, [2, 3, 4], Node("Softmax", ["x"], Int("axis", 2)));
        Check(13, [2, 3, 4], Node("Softmax", ["x"], Int("axis", 1)));
        Check(13, [2, 3, 4], Node("Softmax", ["x"]));
    }

    [Fact]
    public void ShapeOps()
    {
        Check(8, [2, 3, 4, 5], Node("Flatten", ["x"]));
        Check(11, [2, 3, 4, 5], Node("Flatten", ["x"], Int("axis", -1)));
        Check(8, [2, 3, 4, 5], Node("Flatten", ["x"], Int("axis", 0)));
        Check(8, [2, 3, 4, 5], Node("Reshape", ["x", "s"]), Int64s("s", 0, -1, 5));
        Check(13, [2, 3, 4, 5], Node("Reshape", ["x", "s"]), Int64s("s", -1, 0, 0, 1));
        Check(8, [2, 3, 4, 5], Node("Transpose", ["x"], Ints("perm", 0, 2, 3, 1)));
        Check(8, [2, 3, 4], Node("Transpose", ["x"]));
        Check(11, [2, 1, 4, 1], Node("Squeeze", ["x"], Ints("axes", -1)));
        Check(11, [2, 1, 4, 1], Node("Squeeze", ["x"]));
        Check(13, [2, 1, 4, 1], Node("Squeeze", ["x", "a"]), Int64s("a", 1, 3));
        Check(11, [2, 3], Node("Unsqueeze", ["x"], Ints("axes", 0, -1)));
        Check(13, [2, 3], Node("Unsqueeze", ["x", "a"]), Int64s("a", 1, 3));
        Check(8, [2, 3, 4], Node("Concat", ["x", "c", "x"], Int("axis", 1)), OrtReference.Floats("c", [2, 2, 4], 10));
        Check(11, [2, 3, 4], Node("Concat", ["x", "x"], Int("axis", -1)));
        Check(8, [2, 5, 3], Node("Gather", ["x", "i"], Int("axis", 1)), OnnxGraph.Int64Tensor("i", [2, 2], [4, 0, 1, 1]));
        Check(11, [2, 5, 3], Node("Gather", ["x", "i"], Int("axis", -2)), OnnxGraph.Int64Tensor("i", [3], [-1, 0, -5]));
        Check(8, [2, 5, 3], Node("Gather", ["x", "i"]), OnnxGraph.Int64Tensor("i", [], [1]));
    }

    [Fact]
    public void ConstantNodesFeedOtherNodes()
    {
        var scale = OnnxGraph.Node("Constant", "k", [], ["k"], new AttributeProto
        {
            Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = OnnxGraph.FloatTensor("", [1, 3, 1, 1], [1f, -2f, 0.5f]),
        });
        var shape = OnnxGraph.Node("Constant", "s", [], ["s"], new AttributeProto { Name = "value_ints", Type = AttributeProto.Types.AttributeType.Ints, Ints = { 2, -1 } });
        Check(13, [2, 3, 2, 2], [scale, OnnxGraph.Node("Mul", "m", ["x", "k"], ["m"]), shape, OnnxGraph.Node("Reshape", "r", ["m", "s"], ["y"])]);
    }

    [Fact]
    public void InitializerNamesBecomeValidUniqueParameterNames()
    {
        // torchvision writes "features.0.weight"; TorchSharp forbids '.' in parameter names.
        var model = OrtReference.Model(13, [1, 2, 6, 6],
        [
            OnnxGraph.Node("Conv", "c1", ["x", "features.0.weight", "features.0.bias"], ["h"], Ints("pads", 1, 1, 1, 1)),
            OnnxGraph.Node("Conv", "c2", ["h", "features_0_weight"], ["y"]),
        ],
        [OrtReference.Floats("features.0.weight", [2, 2, 3, 3], 15), OrtReference.Floats("features.0.bias", [2], 16), OrtReference.Floats("features_0_weight", [3, 2, 1, 1], 17)]);
        var trainable = OnnxGraphModule.TrainableInitializers(model, "x", "y");
        Assert.Equal(3, trainable.Count);

        using var module = new OnnxGraphModule(model, "x", "y", trainable);
        var names = module.named_parameters().Select(p => p.name).ToList();
        Assert.Equal(3, names.Distinct().Count());
        Assert.All(names, n => Assert.DoesNotContain(".", n));
        Assert.Equal(trainable.Order(), names.Select(n => module.OnnxNames[n]).Order());
        Assert.Equal("features_0_weight", module.TorchNames["features.0.weight"]);
        Assert.Equal(trainable.Order(), module.CurrentInitializers().Keys.Order());
    }

    [Fact]
    public void UnknownOpsAreRefusedNamingOpAndNode()
    {
        var model = OrtReference.Model(13, [1, 3, 4, 4], [OnnxGraph.Node("Relu", "r", ["x"], ["h"]), OnnxGraph.Node("Resize", "upsample_1", ["h", "", "sc"], ["y"])],
            [OnnxGraph.FloatTensor("sc", [4], [1, 1, 2, 2])]);
        var e = Assert.Throws<NotSupportedException>(() => new OnnxGraphModule(model, "x", "y"));
        Assert.Contains("'Resize'", e.Message);
        Assert.Contains("upsample_1", e.Message);
    }

    [Fact]
    public void BatchNormalizationInferenceAndTrainingFollowOnnx()
    {
        const float momentum = 0.8f, epsilon = 1e-3f;
        long[] shape = [4, 3, 2, 2];
        var mean = OnnxGraph.FloatTensor("mean", [3], [0.1f, -0.2f, 0.3f]);
        var variance = OnnxGraph.FloatTensor("var", [3], [0.5f, 1.5f, 2f]);
        var node = Node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], Float("epsilon", epsilon), Float("momentum", momentum));
        TensorProto[] initializers = [OrtReference.Floats("scale", [3], 12), OrtReference.Floats("bias", [3], 13), mean, variance];
        Check(9, shape, node, initializers);
        Check(15, shape, node, initializers);

        var model = OrtReference.Model(15, shape, [node], initializers);
        var x = OrtReference.Random(shape, seed: 14, low: 0f, high: 4f);
        using var input = x.ToTorch();
        using var module = new OnnxGraphModule(model, "x", "y", trainBatchNorm: true);
        module.train();
        using var y = module.forward(input);

        // Batch statistics with the population variance; running = running * momentum + batch * (1 - momentum).
        using var batchMean = input.mean([0L, 2, 3]);
        using var batchVariance = input.var([0L, 2, 3], unbiased: false);
        var current = module.CurrentInitializers();
        using var expectedMean = torch.tensor(OnnxGraph.ReadFloats(mean)) * momentum + batchMean * (1 - momentum);
        using var expectedVariance = torch.tensor(OnnxGraph.ReadFloats(variance)) * momentum + batchVariance * (1 - momentum);
        Assert.True(current["mean"].allclose(expectedMean, rtol: 1e-5, atol: 1e-6));
        Assert.True(current["var"].allclose(expectedVariance, rtol: 1e-5, atol: 1e-6));
        using var normalized = y.mean([0L, 2, 3]);
        using var bias = torch.tensor(OnnxGraph.ReadFloats(initializers[1]));
        Assert.True(normalized.allclose(bias, atol: 1e-5), "with batch statistics each channel's mean is its bias");

        // The updated statistics, written back into the graph, are what ORT then uses.
        module.eval();
        using var inference = module.forward(input);
        var updated = model.Clone();
        foreach (var name in new[] { "mean", "var" })
        {
            updated.Graph.Initializer.Remove(updated.Graph.Initializer.Single(t => t.Name == name));
            updated.Graph.Initializer.Add(OnnxGraph.FloatTensor(name, [3], current[name].data<float>().ToArray()));
        }
        var expected = OrtReference.Run(updated, "x", x, "y")[0];
        Assert.True(OrtReference.Values.Of(inference).MaxAbsDiff(expected) <= 1e-5);
        foreach (var t in current.Values)
            t.Dispose();
    }
}
