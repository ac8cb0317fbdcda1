namespace MlNetTransfer.Backbones;

/// <summary>
/// The conv bases the tool knows by name, each with its preprocessing in one place (timm's registry).
/// Anything else is a user's ONNX file with a spec JSON beside it.
/// </summary>
public static class ConvBaseRegistry
{
    /// <summary>The embedded default: no export or download needed.</summary>
    public const string DefaultName = "resnet18";

    private const string ExportHint = "Export it on your machine as onnx/README.md shows.";

    private static readonly Dictionary<string, Func<ConvBasePreset>> Presets = new(StringComparer.OrdinalIgnoreCase)
    {
        ["resnet18"] = () => new ConvBasePreset
        {
            Name = "resnet18",
            Description = "ResNet18 (ImageNet, CNTK export) from Microsoft.ML.DnnImageFeaturizer.ResNet18; 512 features",
            ModelFile = PackagedModels.ResNet18,
            InputName = "Input247",
            OutputName = "Pooling395_Output_0",
            // Exactly what ResNetPreprocess.onnx does: RGB -> BGR, minus a 224x224 mean image, no scaling.
            Preprocessing = new PreprocessingSpec
            {
                Width = 224,
                Height = 224,
                ChannelOrder = ChannelOrder.BGR,
                MeanImage = new MeanImageReference(PackagedModels.ResNetPreprocess, "MeanImage"),
            },
            // This CNTK variant has [2,2,2,3] basic blocks per stage; the tensors where each stage ends.
            Blocks =
            [
                new("stem", "Pooling255_Output_0"),
                new("stage1", "ReLU283_Output_0"),
                new("stage2", "ReLU315_Output_0"),
                new("stage3", "ReLU347_Output_0"),
                new("stage4", "ReLU393_Output_0"),
            ],
        },
        ["vgg16-keras"] = () => new ConvBasePreset
        {
            Name = "vgg16-keras",
            Description = "Keras VGG16(include_top=False): caffe preprocessing (BGR, mean 103.939/116.779/123.68), NHWC, block5_pool",
            OutputName = null,
            Preprocessing = new PreprocessingSpec
            {
                Layout = TensorLayout.NHWC,
                ChannelOrder = ChannelOrder.BGR,
                Mean = [103.939f, 116.779f, 123.68f],
            },
            BlocksEndAtMaxPools = true,
            ObtainHint = ExportHint + " (onnx/export_vgg16_keras.py)",
        },
        ["vgg16-torchvision"] = () => new ConvBasePreset
        {
            Name = "vgg16-torchvision",
            Description = "torchvision vgg16().features: RGB, /255, ImageNet mean/std, NCHW, 512x7x7",
            Preprocessing = new PreprocessingSpec
            {
                Scale = 1f / 255f,
                Mean = [0.485f, 0.456f, 0.406f],
                Std = [0.229f, 0.224f, 0.225f],
            },
            BlocksEndAtMaxPools = true,
            ObtainHint = ExportHint + " (onnx/export_vgg16_torchvision.py)",
        },
    };

    /// <summary>Names of the built-in presets.</summary>
    public static IReadOnlyList<string> Names => Presets.Keys.ToList();

    /// <summary>A built-in preset by name.</summary>
    public static ConvBasePreset Get(string name) =>
        Presets.TryGetValue(name, out var make)
            ? make()
            : throw new ConvBaseException($"Unknown conv base '{name}'. Known: {string.Join(", ", Presets.Keys)}, or a path to an .onnx file with a spec JSON beside it.");

    /// <summary>
    /// What the console's <c>--base</c> and <c>--base-model</c> mean: a preset name (optionally with the user's ONNX
    /// for it), or a path to any .onnx file whose preprocessing spec sits beside it as <c>file.onnx.json</c>.
    /// </summary>
    public static ConvBasePreset Resolve(string baseNameOrPath, string? modelFile = null)
    {
        if (Presets.ContainsKey(baseNameOrPath))
        {
            var preset = Get(baseNameOrPath);
            return modelFile is null ? preset : preset.WithModelFile(modelFile);
        }

        if (!baseNameOrPath.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase))
            return Get(baseNameOrPath); // throws the "unknown" message

        var path = Path.GetFullPath(baseNameOrPath);
        if (!File.Exists(path))
            throw new ConvBaseException($"Conv base file '{path}' does not exist.");
        var specPath = ConvBaseSpecFile.PathBeside(path);
        if (!File.Exists(specPath))
            throw new ConvBaseException(
                $"'{path}' has no preprocessing spec: write '{specPath}' (input size, channel order, mean/std; see onnx/README.md).");
        var custom = new ConvBasePreset { Name = Path.GetFileNameWithoutExtension(path), ModelFile = path, Description = "user-supplied ONNX conv base" };
        return ConvBaseSpecFile.Read(specPath).ApplyTo(custom);
    }
}
