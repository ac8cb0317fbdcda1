using Microsoft.ML;
using Microsoft.ML.OnnxRuntime;
using MlNetTransfer.Backbones;
using MlNetTransfer.Inference;
using MlNetTransfer.Onnx;
using MlNetTransfer.Tests.Fixtures;
using MlNetTransfer.Training;

namespace MlNetTransfer.Tests;

/// <summary>The VGG16 presets on VGG16-shaped graphs (13 convs, 5 blocks, seeded weights): real VGG16 weights cannot be had here.</summary>
public class Vgg16PresetTests
{
    public static TheoryData<string> Presets => new() { "vgg16-keras", "vgg16-torchvision" };

    private static string WriteGraph(string preset, TestData.TempFolder temp) => preset == "vgg16-keras"
        ? Vgg16ShapedOnnx.WriteKerasLike(temp.File("vgg16-keras.onnx"))
        : Vgg16ShapedOnnx.WriteTorchvisionLike(temp.File("vgg16-torchvision.onnx"));

    [Theory]
    [MemberData(nameof(Presets))]
    public void ComposedGraphAppliesThePresetsPreprocessing(string presetName)
    {
        using var temp = new TestData.TempFolder();
        var file = WriteGraph(presetName, temp);
        var preset = ConvBaseRegistry.Get(presetName).WithModelFile(file);
        var graph = FeaturizerGraphCache.GetOrBuild(preset, temp.Path);
        Assert.Equal(64, graph.Preset.Preprocessing.Width);
        Assert.Equal(32, graph.FeatureLength);

        // Pixels as ExtractPixels gives them: planar RGB 0..255.
        var random = new Random(3);
        var pixels = Enumerable.Range(0, 3 * 64 * 64).Select(_ => (float)random.Next(256)).ToArray();
        var expected = ReferenceFeatures(file, preset.Preprocessing, pixels, nhwc: presetName == "vgg16-keras");

        using var session = new InferenceSession(graph.Path);
        using var input = OrtValue.CreateTensorValueFromMemory(pixels, [1, 3, 64, 64]);
        using var runOptions = new RunOptions();
        using var output = session.Run(runOptions, [FeaturizerGraphBuilder.PixelsTensor], [input], [FeaturizerGraphBuilder.FeaturesTensor]);
        var actual = output[0].GetTensorDataAsSpan<float>().ToArray();

        Assert.Equal(expected.Length, actual.Length);
        Assert.True(expected.Zip(actual, (a, b) => Math.Abs(a - b)).Max() <= 1e-4 * Math.Max(1, expected.Max(Math.Abs)));
    }

    /// <summary>The preset's preprocessing written out by hand, the original graph run as is, then global average pooling.</summary>
    private static float[] ReferenceFeatures(string file, PreprocessingSpec spec, float[] rgbPlanar, bool nhwc)
    {
        int h = 64, w = 64, plane = h * w;
        var x = new float[3 * plane];
        for (int c = 0; c < 3; c++)
        {
            int source = spec.ChannelOrder == ChannelOrder.BGR ? 2 - c : c;
            for (int i = 0; i < plane; i++)
            {
                float v = (rgbPlanar[source * plane + i] * spec.Scale - spec.Mean[c]) / spec.Std[c];
                if (nhwc) x[i * 3 + c] = v; else x[c * plane + i] = v;
            }
        }
        using var session = new InferenceSession(file);
        using var input = OrtValue.CreateTensorValueFromMemory(x, nhwc ? [1, h, w, 3] : [1, 3, h, w]);
        using var runOptions = new RunOptions();
        using var output = session.Run(runOptions, [session.InputNames[0]], [input], [session.OutputNames[0]]);
        var y = output[0].GetTensorDataAsSpan<float>().ToArray();
        var shape = output[0].GetTensorTypeAndShape().Shape;
        int channels = (int)(nhwc ? shape[3] : shape[1]), spatial = (int)(shape[1] * shape[2] * shape[3] / channels);
        var pooled = new float[channels];
        for (int c = 0; c < channels; c++)
        {
            double sum = 0;
            for (int s = 0; s < spatial; s++)
                sum += nhwc ? y[s * channels + c] : y[c * spatial + s];
            pooled[c] = (float)(sum / spatial);
        }
        return pooled;
    }

    [Theory]
    [MemberData(nameof(Presets))]
    public void TrainsSavesLoadsAndPredictsThroughTheWholeChain(string presetName)
    {
        using var temp = new TestData.TempFolder();
        var preset = ConvBaseRegistry.Resolve(presetName, WriteGraph(presetName, temp));
        var dataset = TestData.FashionSubset(classes: 3, train: 6, test: 3);
        var options = new ImageClassifierTrainerOptions { ConvBase = preset, Lbfgs = new LbfgsHeadOptions { L2Grid = [0.1f, 10f], Folds = 2 } };

        using var trained = new ImageClassifierTrainer(options).Train(dataset);
        var zip = temp.File("vgg.zip");
        trained.Save(zip);

        Assert.Equal(presetName, trained.Metadata.ConvBase.Name);
        Assert.Equal(32, trained.Metadata.ConvBase.FeatureLength);
        using var classifier = ImageClassifier.Load(zip, new MLContext(1));
        Assert.Equal(dataset.Classes, classifier.Classes);
        var report = trained.Reports[0];
        foreach (var evaluated in report.Images)
        {
            var prediction = classifier.Predict(evaluated.Path);
            Assert.Equal(evaluated.Predicted, prediction.Label);
            Assert.Equal(evaluated.PredictedProbability, prediction.Probability, tolerance: 1e-4);
        }
    }

    [Fact]
    public void KerasPresetWithoutItsFileSaysHowToGetIt()
    {
        var e = Assert.Throws<ConvBaseException>(() => FeaturizerGraphCache.GetOrBuild(ConvBaseRegistry.Get("vgg16-keras")));
        Assert.Contains("ConvBasePreset.ModelFile", e.Message);
        Assert.Contains("onnx/README.md", e.Message);
        // The console says it with its flag.
        Assert.Contains("--base-model <file.onnx>", MlNetTransfer.Cli.Commands.OptionFlags.Translate(e.Message));
    }

    [Fact]
    public void SpecJsonBesideTheFileOverridesThePreset()
    {
        using var temp = new TestData.TempFolder();
        var file = Vgg16ShapedOnnx.WriteTorchvisionLike(temp.File("custom.onnx"));
        File.WriteAllText(file + ".json", """{ "name": "my-vgg", "channelOrder": "BGR", "scale": 1, "mean": [1, 2, 3], "std": [4, 5, 6], "pooling": "max" }""");

        var preset = ConvBaseRegistry.Resolve(file);

        Assert.Equal("my-vgg", preset.Name);
        Assert.Equal(ChannelOrder.BGR, preset.Preprocessing.ChannelOrder);
        Assert.Equal([1f, 2f, 3f], preset.Preprocessing.Mean);
        Assert.Equal(FeaturePooling.Max, preset.Pooling);
        Assert.Equal(32, FeaturizerGraphCache.GetOrBuild(preset, temp.Path).FeatureLength);
    }

    [Fact]
    public void AnOnnxFileWithoutSpecIsAClearError()
    {
        using var temp = new TestData.TempFolder();
        var file = Vgg16ShapedOnnx.WriteTorchvisionLike(temp.File("nospec.onnx"));
        var e = Assert.Throws<ConvBaseException>(() => ConvBaseRegistry.Resolve(file));
        Assert.Contains("nospec.onnx.json", e.Message);
    }

    [Fact]
    public void WrongLayoutIsAClearError()
    {
        using var temp = new TestData.TempFolder();
        var file = Vgg16ShapedOnnx.WriteKerasLike(temp.File("keras.onnx"));
        var preset = ConvBaseRegistry.Get("vgg16-torchvision").WithModelFile(file); // NCHW preset on an NHWC graph
        var e = Assert.Throws<ConvBaseException>(() => FeaturizerGraphCache.GetOrBuild(preset, temp.Path));
        Assert.Contains("layout", e.Message);
    }
}
