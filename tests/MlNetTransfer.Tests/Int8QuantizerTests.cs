using Google.Protobuf;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using MlNetTransfer.Backbones;
using MlNetTransfer.Data;
using MlNetTransfer.Featurization;
using MlNetTransfer.Onnx;
using MlNetTransfer.Tests.Fixtures;
using Onnx;
using Xunit.Abstractions;

namespace MlNetTransfer.Tests;

/// <summary>
/// Int8 QDQ quantization of the composed resnet18 featurizer graph: what ONNX Runtime makes of it, determinism, and how
/// close its features stay to fp32 on real photos. No timings here (see the report of the quantizer's measurements).
/// </summary>
public class Int8QuantizerTests : IClassFixture<Int8QuantizerTests.QuantizedResNet18>
{
    private const int Size = 224;
    private readonly QuantizedResNet18 _q;
    private readonly ITestOutputHelper _output;

    public Int8QuantizerTests(QuantizedResNet18 quantized, ITestOutputHelper output)
    {
        _q = quantized;
        _output = output;
    }

    /// <summary>
    /// The resnet18 graph quantized once for the class with the repo's Fashion sample (always present) as calibration:
    /// 48 images in 3 batches of 16, of which <see cref="CalibrationImages"/> are to be used.
    /// </summary>
    public sealed class QuantizedResNet18
    {
        public const int CalibrationImages = 40;

        public QuantizedResNet18()
        {
            Graph = FeaturizerGraphCache.GetOrBuild(ConvBaseRegistry.Get("resnet18"));
            Fp32 = OnnxGraph.Load(Graph.Path);
            Fp32Bytes = Fp32.ToByteArray();
            var files = Directory.GetFiles(Path.Combine(TestData.FashionSample, "train"), "*", SearchOption.AllDirectories)
                .Order(StringComparer.Ordinal).Take(48).ToList();
            Batches = PixelBatches(files, 16).ToList();
            Model = Int8Quantizer.Quantize(Fp32, CountReads(), Size, Size, Options, out var report);
            Report = report;
        }

        public static Int8QuantizationOptions Options => new() { CalibrationImages = CalibrationImages, CalibrationThreads = 2 };

        internal FeaturizerGraphFile Graph { get; }

        public ModelProto Fp32 { get; }

        public byte[] Fp32Bytes { get; }

        public List<float[]> Batches { get; }

        public ModelProto Model { get; }

        internal Int8QuantizationReport Report { get; }

        /// <summary>Batches the quantizer asked for.</summary>
        public int BatchesRead { get; private set; }

        private IEnumerable<float[]> CountReads()
        {
            foreach (var batch in Batches)
            {
                BatchesRead++;
                yield return batch;
            }
            BatchesRead++; // asked for one more than there is
        }
    }

    [Fact]
    public void QuantizedGraphRunsAsInt8KernelsInOnnxRuntime()
    {
        var model = _q.Model;
        Assert.Equal(_q.Fp32.Graph.Output.Select(o => o.Name), model.Graph.Output.Select(o => o.Name));
        Assert.Equal([FeaturizerGraphBuilder.PixelsTensor], OnnxGraph.RealInputs(model.Graph).Select(i => i.Name));
        Assert.Equal(_q.Fp32Bytes, _q.Fp32.ToByteArray()); // the input model is left alone

        // 40 of the 48 images: the third batch is cut, and no fourth is asked for.
        Assert.Equal(QuantizedResNet18.CalibrationImages, _q.Report.CalibrationImages);
        Assert.Equal(3, _q.BatchesRead);
        Assert.Equal(22, _q.Report.QuantizedConvs);
        Assert.Equal(22, _q.Report.FoldedBatchNorms);
        _output.WriteLine(_q.Report.Description);

        // What goes into ORT: no float weights left, 7-bit symmetric per-channel weights, int32 biases at in·w scale.
        var inits = model.Graph.Initializer.ToDictionary(i => i.Name);
        Assert.DoesNotContain(model.Graph.Node, n => n.OpType is "BatchNormalization");
        Assert.DoesNotContain(inits.Values, i => i.DataType == (int)TensorProto.Types.DataType.Float && i.Dims.Count == 4 && i.Name != "mlnt_mean_image");
        var convs = model.Graph.Node.Where(n => n.OpType == "Conv").ToList();
        Assert.Equal(22, convs.Count);
        var producer = model.Graph.Node.SelectMany(n => n.Output.Select(o => (o, n))).ToDictionary(x => x.o, x => x.n);
        foreach (var conv in convs)
        {
            var wDq = producer[conv.Input[1]];
            Assert.Equal("DequantizeLinear", wDq.OpType);
            var w = inits[wDq.Input[0]];
            Assert.Equal((int)TensorProto.Types.DataType.Int8, w.DataType);
            var values = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, sbyte>(w.RawData.Span);
            Assert.InRange((int)System.Numerics.Tensors.TensorPrimitives.Min(values), -64, 64);
            Assert.InRange((int)System.Numerics.Tensors.TensorPrimitives.Max(values), -64, 64);
            var wScale = Floats(inits[wDq.Input[1]]);
            Assert.Equal(w.Dims[0], wScale.Length);
            Assert.All(inits[wDq.Input[2]].RawData.ToByteArray(), b => Assert.Equal(0, b));

            var bDq = producer[conv.Input[2]];
            Assert.Equal((int)TensorProto.Types.DataType.Int32, inits[bDq.Input[0]].DataType);
            var xDq = producer[conv.Input[0]];
            float xScale = Floats(inits[xDq.Input[1]])[0];
            var bScale = Floats(inits[bDq.Input[1]]);
            for (int c = 0; c < bScale.Length; c++)
                Assert.Equal((double)xScale * wScale[c], bScale[c], 1e-6 * bScale[c]);
        }

        // What ORT makes of it: every Conv a QLinearConv, every Add a QLinearAdd, MaxPool on uint8, no Relu left, and only
        // the Q at the input and the DQ before the final pooling.
        using var temp = new TestData.TempFolder();
        var optimizedPath = temp.File("optimized.onnx");
        using (var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, IntraOpNumThreads = 2, OptimizedModelFilePath = optimizedPath, LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR })
        using (new InferenceSession(model.ToByteArray(), options)) { }
        var optimized = OnnxGraph.Load(optimizedPath).Graph.Node.GroupBy(n => n.OpType).ToDictionary(g => g.Key, g => g.Count());
        _output.WriteLine("ORT-optimized graph: " + string.Join(", ", optimized.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key} x{p.Value}")));
        Assert.Equal(22, optimized.GetValueOrDefault("QLinearConv"));
        Assert.Equal(9, optimized.GetValueOrDefault("QLinearAdd"));
        Assert.Equal(1, optimized.GetValueOrDefault("NhwcMaxPool") + optimized.GetValueOrDefault("MaxPool"));
        foreach (var fp32Op in new[] { "Conv", "FusedConv", "Relu", "Add", "Sum", "BatchNormalization" })
            Assert.False(optimized.ContainsKey(fp32Op), $"ORT left a {fp32Op} in fp32");
        Assert.True(optimized.GetValueOrDefault("QuantizeLinear") <= 1 && optimized.GetValueOrDefault("DequantizeLinear") <= 1,
            "per-layer QuantizeLinear/DequantizeLinear pairs were left unfused");

        // And it runs: [n, 512] finite features.
        using var session = OrtSessions.Create(model.ToByteArray(), 2);
        var features = Run(session, _q.Batches[0], 16);
        Assert.Equal(16, features.Count);
        Assert.All(features, f => Assert.True(f.Length == 512 && f.All(float.IsFinite)));
    }

    [Fact]
    public void SameCalibrationGivesAByteIdenticalModel()
    {
        var again = Int8Quantizer.Quantize(_q.Fp32, _q.Batches, Size, Size, QuantizedResNet18.Options);
        Assert.True(_q.Model.ToByteArray().AsSpan().SequenceEqual(again.ToByteArray()), "two quantizations of the same input differ");
    }

    [SkippableFact]
    public void Int8FeaturesStayCloseToFp32OnHymenopteraVal()
    {
        TestData.RequireShared(TestData.Hymenoptera);
        string[] Files(string split) => new[] { "ants", "bees" }
            .SelectMany(c => Directory.GetFiles(Path.Combine(TestData.Hymenoptera, split, c))).Order(StringComparer.Ordinal).ToArray();
        var train = Files("train");
        var val = Files("val");

        // Default options: 200 calibration images, spread over the (sorted) train files of both classes.
        var options = new Int8QuantizationOptions();
        int n = Math.Min(options.CalibrationImages, train.Length);
        var calibration = Enumerable.Range(0, n).Select(i => train[(int)((long)i * train.Length / n)]).ToList();
        var int8 = Int8Quantizer.Quantize(_q.Fp32, PixelBatches(calibration, 16), Size, Size, options, out var report);
        _output.WriteLine(report.Description);

        using var fp32Session = OrtSessions.Create(_q.Graph.Path, 2);
        using var int8Session = OrtSessions.Create(int8.ToByteArray(), 2);
        var cosines = new List<double>();
        foreach (var batch in PixelBatches(val, 16))
        {
            int images = batch.Length / (3 * Size * Size);
            var a = Run(fp32Session, batch, images);
            var b = Run(int8Session, batch, images);
            cosines.AddRange(a.Zip(b, Cosine));
        }
        double mean = cosines.Average(), min = cosines.Min();
        _output.WriteLine($"int8 vs fp32 features on {cosines.Count} hymenoptera val images: cosine mean {mean:F5}, min {min:F5}");
        Assert.Equal(val.Length, cosines.Count);
        Assert.True(mean >= 0.99, $"mean cosine {mean:F5} < 0.99");
        Assert.True(min >= 0.95, $"min cosine {min:F5} < 0.95");
    }

    [Fact]
    public void BatchNormFoldingKeepsTheConvOutput()
    {
        // Conv (with bias) -> BatchNormalization, opset 13, random parameters; folded, ORT gives the same output.
        var rng = new Random(7);
        float[] Random(int count, float lo, float hi) => Enumerable.Range(0, count).Select(_ => lo + (float)rng.NextDouble() * (hi - lo)).ToArray();
        var graph = new GraphProto { Name = "conv_bn" };
        graph.Input.Add(OnnxGraph.FloatValueInfo("x", "batch", 4, 9, 9));
        graph.Output.Add(OnnxGraph.FloatValueInfo("y", "batch", 6, 9, 9));
        graph.Initializer.Add(OnnxGraph.FloatTensor("w", [6, 4, 3, 3], Random(6 * 4 * 9, -1, 1)));
        graph.Initializer.Add(OnnxGraph.FloatTensor("b", [6], Random(6, -1, 1)));
        graph.Initializer.Add(OnnxGraph.FloatTensor("gamma", [6], Random(6, 0.5f, 2)));
        graph.Initializer.Add(OnnxGraph.FloatTensor("beta", [6], Random(6, -1, 1)));
        graph.Initializer.Add(OnnxGraph.FloatTensor("mean", [6], Random(6, -1, 1)));
        graph.Initializer.Add(OnnxGraph.FloatTensor("var", [6], Random(6, 0.1f, 3)));
        graph.Node.Add(OnnxGraph.Node("Conv", "conv", ["x", "w", "b"], ["c"], OnnxGraph.Ints("pads", 1, 1, 1, 1)));
        graph.Node.Add(OnnxGraph.Node("BatchNormalization", "bn", ["c", "gamma", "beta", "mean", "var"], ["y"], OnnxGraph.Float("epsilon", 1e-3f)));
        var model = new ModelProto { IrVersion = 7, Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });

        var folded = model.Clone();
        Assert.Equal(1, ConvBatchNormFolding.Fold(folded.Graph));
        OnnxGraph.PruneTo(folded.Graph, ["y"]);
        Assert.Equal(["Conv"], folded.Graph.Node.Select(n => n.OpType));
        Assert.Equal(2, folded.Graph.Initializer.Count);

        var x = Random(2 * 4 * 9 * 9, -3, 3);
        float[] Output(ModelProto m)
        {
            // No graph optimization: ORT must not fold the BatchNormalization itself.
            using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL };
            using var session = new InferenceSession(m.ToByteArray(), options);
            using var input = OrtValue.CreateTensorValueFromMemory(x, [2, 4, 9, 9]);
            using var runOptions = new RunOptions();
            using var outputs = session.Run(runOptions, ["x"], [input], ["y"]);
            return outputs[0].GetTensorDataAsSpan<float>().ToArray();
        }
        var expected = Output(model);
        var actual = Output(folded);
        double diff = expected.Zip(actual, (e, a) => Math.Abs(e - a)).Max();
        Assert.True(diff <= 1e-4, $"max abs diff {diff}");
    }

    [Fact]
    public void BatchesThatAreNotWholeImagesAreRefused()
    {
        var e = Assert.Throws<ArgumentException>(() => Int8Quantizer.Quantize(_q.Fp32, [new float[3 * Size * Size + 5]], Size, Size));
        Assert.Contains("whole number", e.Message);
        Assert.Throws<ArgumentException>(() => Int8Quantizer.Quantize(_q.Fp32, [], Size, Size));
    }

    [Fact]
    public void OldOpsetWithOpsThatChangedMeaningIsRefused()
    {
        // Softmax's axis semantics changed at opset 13, which per-channel DequantizeLinear needs.
        var graph = new GraphProto { Name = "softmax8" };
        graph.Input.Add(OnnxGraph.FloatValueInfo(FeaturizerGraphBuilder.PixelsTensor, "batch", 3, 4, 4));
        graph.Output.Add(OnnxGraph.FloatValueInfo("y", "batch", 3, 4, 4));
        graph.Node.Add(OnnxGraph.Node("Softmax", "softmax", [FeaturizerGraphBuilder.PixelsTensor], ["y"]));
        var model = new ModelProto { IrVersion = 3, Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 8 });
        var e = Assert.Throws<NotSupportedException>(() => Int8Quantizer.Quantize(model, [new float[3 * 4 * 4]], 4, 4));
        Assert.Contains("Softmax", e.Message);
    }

    /// <summary>Planar 0..255 pixels of the files, resized as the featurizer does (ML.NET IsoCrop + ExtractPixels), in batches; streamed.</summary>
    private static IEnumerable<float[]> PixelBatches(IReadOnlyList<string> files, int batchSize)
    {
        var ml = new MLContext(1);
        var unreadable = new List<SkippedFile>();
        var decoded = DecodedImages.Load(ml, files.Select(f => new LabeledImage(f, "x")).ToList(), unreadable);
        var pixels = ImagePixelsPipeline.FromImages(ml.Transforms, Size, Size, ImagePixelsPipeline.ImageColumn, ImagePixelsPipeline.ImageColumn, ImagePixelsPipeline.PixelsColumn)
            .Fit(DecodedImages.Empty(ml)).Transform(decoded);
        int perImage = 3 * Size * Size, count = 0;
        var batch = new float[batchSize * perImage];
        using var cursor = pixels.GetRowCursor(pixels.Schema);
        var getPixels = cursor.GetGetter<VBuffer<float>>(pixels.Schema[ImagePixelsPipeline.PixelsColumn]);
        VBuffer<float> values = default;
        while (cursor.MoveNext())
        {
            getPixels(ref values);
            values.GetValues().CopyTo(batch.AsSpan(count * perImage, perImage));
            if (++count == batchSize)
            {
                yield return batch;
                batch = new float[batchSize * perImage];
                count = 0;
            }
        }
        if (count > 0)
            yield return batch.AsSpan(0, count * perImage).ToArray();
        Assert.Empty(unreadable);
    }

    private static List<float[]> Run(InferenceSession session, float[] pixels, int images)
    {
        using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, pixels.AsMemory(0, images * 3 * Size * Size), [images, 3, Size, Size]);
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, [FeaturizerGraphBuilder.PixelsTensor], [input], [FeaturizerGraphBuilder.FeaturesTensor]);
        var features = outputs[0].GetTensorDataAsSpan<float>();
        int d = features.Length / images;
        var rows = new List<float[]>(images);
        for (int i = 0; i < images; i++)
            rows.Add(features.Slice(i * d, d).ToArray());
        return rows;
    }

    private static double Cosine(float[] a, float[] b)
    {
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++)
        {
            dot += (double)a[i] * b[i];
            na += (double)a[i] * a[i];
            nb += (double)b[i] * b[i];
        }
        return dot / Math.Sqrt(na * nb);
    }

    private static float[] Floats(TensorProto t) => OnnxGraph.ReadFloats(t);
}
