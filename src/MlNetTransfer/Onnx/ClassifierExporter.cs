using System.Text.Json;
using Google.Protobuf;
using Microsoft.ML;
using MlNetTransfer.Inference;
using MlNetTransfer.Training;
using Onnx;

namespace MlNetTransfer.Onnx;

/// <summary>
/// The whole classifier of a model zip as one ONNX file for use outside .NET: the embedded featurizer graph (preprocessing,
/// conv base, pooling, any MLP hidden layer) + the softmax head, giving class probabilities, and the novelty score as a second output where the model has one. What the pixels must be, and
/// the class names, are written into the model's metadata.
/// </summary>
public static class ClassifierExporter
{
    /// <summary>Output: probabilities [batch, classes], in <see cref="ExportedClassifier.Classes"/> order.</summary>
    public const string ProbabilitiesTensor = "probabilities";

    public static ExportedClassifier Export(string modelZip, string onnxPath)
    {
        // The one validated path: structure, ML.NET load, classes checked against the metadata; the ONNX is the one it loaded.
        using var package = ModelArchive.Open(modelZip, new MLContext(1));
        var metadata = package.RequireMetadata("there is nothing to describe the export");
        var model = ModelProto.Parser.ParseFrom(package.ReadOnnx());
        var head = MaxEntHead.Read(package.Model) ?? throw new ModelLoadException($"'{package.Path}' has no maximum-entropy head to export.");

        int classes = head.Weights.Length, inputs = head.Weights[0].Length;
        var graph = model.Graph;
        graph.Initializer.Add(OnnxGraph.FloatTensor("mlnt_softmax_weight", [classes, inputs], head.Weights.SelectMany(w => w).ToArray()));
        graph.Initializer.Add(OnnxGraph.FloatTensor("mlnt_softmax_bias", [classes], head.Biases));
        graph.Node.Add(OnnxGraph.Node("Gemm", "mlnt_logits", [FeaturizerGraphBuilder.FeaturesTensor, "mlnt_softmax_weight", "mlnt_softmax_bias"], ["mlnt_logits"], OnnxGraph.Int("transB", 1)));
        graph.Node.Add(OnnxGraph.Node("Softmax", "mlnt_softmax", ["mlnt_logits"], [ProbabilitiesTensor], OnnxGraph.Int("axis", 1)));
        bool novelty = NoveltyGraph.HasNovelty(model);
        graph.Output.Clear();
        graph.Output.Add(OnnxGraph.FloatValueInfo(ProbabilitiesTensor, "batch", classes));
        if (novelty)
            graph.Output.Add(OnnxGraph.FloatValueInfo(NoveltyGraph.NoveltyTensor, "batch", 1));

        var spec = metadata.ConvBase.Spec;
        int width = spec?.Width ?? 224, height = spec?.Height ?? 224;
        string input = $"{FeaturizerGraphBuilder.PixelsTensor}: float [batch, 3, {height}, {width}], planar RGB, values 0..255 (no scaling or mean: " +
                       $"those are inside the graph). Resize the image isotropically so its shorter side is {Math.Min(width, height)} " +
                       $"(covering {width}x{height}), then take the centre {width}x{height} (ML.NET ResizeImages IsoCrop, Center).";
        void Meta(string key, string value) => model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        Meta("mlnettransfer.input", input);
        Meta("mlnettransfer.output", $"{ProbabilitiesTensor}: float [batch, {classes}], softmax over the classes in mlnettransfer.classes order");
        Meta("mlnettransfer.classes", JsonSerializer.Serialize(metadata.Classes));
        if (novelty && metadata.Novelty is { } n)
            Meta("mlnettransfer.novelty", string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"{NoveltyGraph.NoveltyTensor}: float [batch, 1], {n.Method}; above {n.Threshold:R} the image is likely of none of the classes ({n.FalseAlarmRate:R} of the training images' out-of-fold scores are above it)"));
        Meta("mlnettransfer.conv_base", $"{metadata.ConvBase.Name}: {metadata.ConvBase.Preprocessing}");
        Meta("mlnettransfer.mode", metadata.Mode);
        Meta("mlnettransfer.created", metadata.CreatedUtc.ToString("O"));
        model.DocString = $"MlNetTransfer image classifier ({metadata.Mode}, {metadata.ConvBase.Name}). Input {input} Output {ProbabilitiesTensor}.";
        OnnxGraph.Save(model, onnxPath);
        return new ExportedClassifier(Path.GetFullPath(onnxPath), metadata.Classes, width, height, new FileInfo(onnxPath).Length);
    }
}

/// <summary>An exported ONNX classifier: where, its classes and the image size it takes.</summary>
public sealed record ExportedClassifier(string Path, IReadOnlyList<string> Classes, int Width, int Height, long Bytes);
