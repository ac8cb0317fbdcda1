using MlNetTransfer.Backbones;
using MlNetTransfer.Onnx;
using MlNetTransfer.Tests.Fixtures;
using MlNetTransfer.TorchSharp.OnnxImport;
using Onnx;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;
using Values = MlNetTransfer.Tests.Fixtures.OrtReference.Values;

namespace MlNetTransfer.Tests;

/// <summary>The composed featurizer graphs run as TorchSharp modules agree with ONNX Runtime, whole and cut at a stage boundary.</summary>
public class OnnxImportParityTests : IClassFixture<OnnxImportParityTests.ResNet18Graph>
{
    private const string Pixels = FeaturizerGraphBuilder.PixelsTensor;
    private const string Features = FeaturizerGraphBuilder.FeaturesTensor;
    private const string Stage3End = "ReLU347_Output_0";

    private readonly ResNet18Graph _resnet;
    private readonly ITestOutputHelper _output;

    public OnnxImportParityTests(ResNet18Graph resnet, ITestOutputHelper output)
    {
        _resnet = resnet;
        _output = output;
        torch.set_num_threads(2);
    }

    /// <summary>The composed resnet18 graph, its ORT results on a seeded pixel batch, loaded once for the class.</summary>
    public sealed class ResNet18Graph
    {
        public ResNet18Graph()
        {
            Model = OnnxGraph.Load(FeaturizerGraphCache.GetOrBuild(ConvBaseRegistry.Get("resnet18")).Path);
            Pixels = OrtReference.Random([2, 3, 224, 224], seed: 1, pixels: true);
            var results = OrtReference.Run(Model, FeaturizerGraphBuilder.PixelsTensor, Pixels, FeaturizerGraphBuilder.FeaturesTensor, Stage3End);
            (Features, Boundary) = (results[0], results[1]);
        }

        public ModelProto Model { get; }

        public Values Pixels { get; }

        public Values Features { get; }

        public Values Boundary { get; }
    }

    [Fact]
    public void ResNet18WholeGraphMatchesOnnxRuntime()
    {
        using var module = new OnnxGraphModule(_resnet.Model, Pixels, Features);
        module.eval();
        using var x = _resnet.Pixels.ToTorch();
        using var y = module.forward(x);

        double diff = Values.Of(y).MaxAbsDiff(_resnet.Features);
        _output.WriteLine($"resnet18 ImagePixels -> Features: max abs diff {diff:g3} (features up to {_resnet.Features.MaxAbs:g3})");
        Assert.True(diff <= 1e-4, $"max abs diff {diff}");
        Assert.Equal(["Gather", "Sub", "Identity", "Conv", "BatchNormalization", "Relu", "MaxPool"], module.Nodes.Take(7).Select(n => n.OpType));
    }

    [Fact]
    public void ResNet18SuffixFromStage3MatchesOnnxRuntime()
    {
        using var module = new OnnxGraphModule(_resnet.Model, Stage3End, Features);
        module.eval();
        using var x = _resnet.Boundary.ToTorch();
        using var y = module.forward(x);

        double diff = Values.Of(y).MaxAbsDiff(_resnet.Features);
        _output.WriteLine($"resnet18 {Stage3End} -> Features: max abs diff {diff:g3}");
        Assert.True(diff <= 1e-4, $"max abs diff {diff}");
        Assert.Equal([2L, 256, 14, 14], _resnet.Boundary.Shape);
        // Stage 4: 3 blocks x 2 convs + the downsampling 1x1 conv, each with its BatchNormalization.
        Assert.Equal(7, module.Nodes.Count(n => n.OpType == "Conv"));
        Assert.Equal(7, module.Nodes.Count(n => n.OpType == "BatchNormalization"));
    }

    [Fact]
    public void BoundaryInsideAResidualBlockIsRefusedNamingTheCrossingTensor()
    {
        // ReLU261 is inside stage 1's first block, whose shortcut carries Pooling255_Output_0 (the stem) around it.
        var e = Assert.Throws<OnnxImportException>(() => new OnnxGraphModule(_resnet.Model, "ReLU261_Output_0", Features));
        Assert.Contains("'Pooling255_Output_0'", e.Message);
        Assert.Contains("Plus267", e.Message);
        Assert.Throws<OnnxImportException>(() => OnnxGraphModule.TrainableInitializers(_resnet.Model, "ReLU261_Output_0", Features));
    }

    [Fact]
    public void StageFourTrainablesAreConvWeightsAndBatchNormAffinesAndGetGradients()
    {
        var trainable = OnnxGraphModule.TrainableInitializers(_resnet.Model, Stage3End, Features);
        var graph = _resnet.Model.Graph;
        var convs = graph.Node.SkipWhile(n => n.Output[0] != Stage3End).Where(n => n.OpType == "Conv").ToList();
        var norms = graph.Node.SkipWhile(n => n.Output[0] != Stage3End).Where(n => n.OpType == "BatchNormalization").ToList();
        var expected = convs.Select(n => n.Input[1]).Concat(norms.SelectMany(n => new[] { n.Input[1], n.Input[2] })).ToHashSet();
        Assert.Equal(7, convs.Count);
        Assert.Contains("Parameter351", expected); // the 1x1 downsampling conv
        Assert.True(expected.SetEquals(trainable), $"unexpected: {string.Join(", ", trainable.Except(expected))}; missing: {string.Join(", ", expected.Except(trainable))}");
        Assert.DoesNotContain(trainable, name => norms.Any(n => n.Input[3] == name || n.Input[4] == name));

        using var module = new OnnxGraphModule(_resnet.Model, Stage3End, Features, trainable);
        module.eval(); // frozen BatchNormalization statistics, trainable affines
        var parameters = module.named_parameters().ToList();
        Assert.Equal(trainable.Count, parameters.Count);
        Assert.All(parameters, p => Assert.Contains(module.OnnxNames[p.name], trainable));

        using var x = _resnet.Boundary.ToTorch();
        using var y = module.forward(x);
        using var weights = torch.linspace(-1, 1, y.shape[1]);
        using var loss = (y * weights).sum();
        loss.backward();
        Assert.All(parameters, p =>
        {
            Assert.NotNull(p.parameter.grad);
            Assert.True(p.parameter.grad!.abs().sum().item<float>() > 0, $"{p.name} got a zero gradient");
        });
        var buffers = module.named_buffers().ToList();
        Assert.Equal(module.InitializerNames.Count - trainable.Count, buffers.Count); // all float here
        Assert.All(buffers, b => Assert.False(b.buffer.requires_grad));
        Assert.All(buffers, b => Assert.Null(b.buffer.grad));
    }

    [Fact]
    public void TwoForwardsGiveIdenticalOutputs()
    {
        using var module = new OnnxGraphModule(_resnet.Model, Stage3End, Features);
        module.eval();
        using var x = _resnet.Boundary.ToTorch();
        using var a = module.forward(x);
        using var b = module.forward(x);
        Assert.True(Same(a, b));
    }

    [Fact]
    public void TrainingModeUpdatesBatchNormStatisticsOnlyWhenAsked()
    {
        using var x = _resnet.Boundary.ToTorch();
        string mean = _resnet.Model.Graph.Node.First(n => n.OpType == "BatchNormalization" && n.Input[0] == "Convolution349_Output_0").Input[3];

        using (var frozen = new OnnxGraphModule(_resnet.Model, Stage3End, Features))
        {
            frozen.train();
            var before = frozen.CurrentInitializers();
            using (var y = frozen.forward(x))
            {
                double diff = Values.Of(y).MaxAbsDiff(_resnet.Features);
                Assert.True(diff <= 1e-4, $"training mode without trainBatchNorm should use running statistics; diff {diff}");
            }
            var after = frozen.CurrentInitializers();
            Assert.All(before, kv => Assert.True(Same(kv.Value, after[kv.Key]), $"{kv.Key} changed"));
            DisposeAll(before, after);
        }

        using var tuned = new OnnxGraphModule(_resnet.Model, Stage3End, Features, trainBatchNorm: true);
        tuned.train();
        var initial = tuned.CurrentInitializers();
        using (var y = tuned.forward(x))
            Assert.True(Values.Of(y).MaxAbsDiff(_resnet.Features) > 1e-3, "batch statistics should change the output");
        var updated = tuned.CurrentInitializers();
        Assert.False(Same(initial[mean], updated[mean]), "running mean unchanged");

        // Back in eval mode: running statistics again (the updated ones), no further update.
        tuned.eval();
        using (var y = tuned.forward(x))
        {
            var again = tuned.CurrentInitializers();
            Assert.True(Same(updated[mean], again[mean]));
            DisposeAll(again);
        }
        DisposeAll(initial, updated);
    }

    [Fact]
    public void Vgg16KerasLikeGraphMatchesOnnxRuntime() => Vgg16Parity("vgg16-keras");

    [Fact]
    public void Vgg16TorchvisionLikeGraphMatchesOnnxRuntime() => Vgg16Parity("vgg16-torchvision");

    private void Vgg16Parity(string presetName)
    {
        using var temp = new TestData.TempFolder();
        var file = presetName == "vgg16-keras"
            ? Vgg16ShapedOnnx.WriteKerasLike(temp.File("vgg16-keras.onnx"))
            : Vgg16ShapedOnnx.WriteTorchvisionLike(temp.File("vgg16-torchvision.onnx"));
        var composed = FeaturizerGraphCache.GetOrBuild(ConvBaseRegistry.Get(presetName).WithModelFile(file), cacheRoot: temp.Path);
        var model = OnnxGraph.Load(composed.Path);
        var pixels = OrtReference.Random([2, 3, 64, 64], seed: 2, pixels: true);
        var expected = OrtReference.Run(model, Pixels, pixels, Features)[0];

        using var module = new OnnxGraphModule(model, Pixels, Features);
        using var x = pixels.ToTorch();
        using var y = module.forward(x);

        double diff = Values.Of(y).MaxAbsDiff(expected);
        _output.WriteLine($"{presetName}: max abs diff {diff:g3}, output scale {expected.MaxAbs:g3}");
        Assert.True(diff <= 1e-4 * Math.Max(1, expected.MaxAbs), $"max abs diff {diff} for outputs up to {expected.MaxAbs}");
        Assert.Equal(13, module.Nodes.Count(n => n.OpType == "Conv"));
    }

    /// <summary>Bit-identical (same shape, same values).</summary>
    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.allclose(b, rtol: 0, atol: 0);

    private static void DisposeAll(params IReadOnlyDictionary<string, Tensor>[] sets)
    {
        foreach (var set in sets)
            foreach (var t in set.Values)
                t.Dispose();
    }
}
