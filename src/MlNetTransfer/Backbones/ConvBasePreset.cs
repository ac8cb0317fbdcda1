namespace MlNetTransfer.Backbones;

/// <summary>
/// Everything needed to use a conv base correctly (timm's pretrained config, Keras' <c>include_top=False</c>):
/// the ONNX file, its input and output tensors, the preprocessing, how features are pooled, and the named blocks.
/// </summary>
public sealed record ConvBasePreset
{
    /// <summary>Registry name (<c>resnet18</c>, <c>vgg16-keras</c>) or the file name of a user's ONNX.</summary>
    public required string Name { get; init; }

    /// <summary>One line for <c>--help</c> and reports.</summary>
    public string Description { get; init; } = "";

    /// <summary>Path of the conv-base ONNX file; null until a user-exported file is given.</summary>
    public string? ModelFile { get; init; }

    /// <summary>Input tensor name; null means the graph's only (non-initializer) input.</summary>
    public string? InputName { get; init; }

    /// <summary>Conv-base output tensor; null means the graph's first output. May be an inner tensor (the graph is cut there).</summary>
    public string? OutputName { get; init; }

    /// <summary>How pixels are turned into the model's input.</summary>
    public PreprocessingSpec Preprocessing { get; init; } = new();

    /// <summary>How a spatial output becomes a vector. Default global average pooling.</summary>
    public FeaturePooling Pooling { get; init; } = FeaturePooling.Average;

    /// <summary>Named blocks, bottom to top. Empty with <see cref="BlocksEndAtMaxPools"/> means "found in the graph".</summary>
    public IReadOnlyList<NamedBlock> Blocks { get; init; } = [];

    /// <summary>VGG-style bases: each MaxPool ends a block, named <c>block1..blockN</c> from the bottom.</summary>
    public bool BlocksEndAtMaxPools { get; init; }

    /// <summary>Where to get the ONNX file when it is not bundled (shown in errors).</summary>
    public string? ObtainHint { get; init; }

    /// <summary>The model file, or a clear error saying how to get one.</summary>
    public string RequireModelFile()
    {
        if (ModelFile is null)
            throw new ConvBaseException($"Conv base '{Name}' needs its ONNX file: set ConvBasePreset.ModelFile (WithModelFile). {ObtainHint}".TrimEnd());
        if (!File.Exists(ModelFile))
            throw new ConvBaseException($"Conv base '{Name}': ONNX file '{ModelFile}' does not exist.");
        return ModelFile;
    }

    /// <summary>
    /// This preset applied to a user's ONNX file: a spec JSON beside it (<c>model.onnx.json</c>) overrides the
    /// fields it states, so the names an exporter wrote win over the preset's defaults.
    /// </summary>
    public ConvBasePreset WithModelFile(string modelFile)
    {
        var full = Path.GetFullPath(modelFile);
        var withFile = this with { ModelFile = full };
        var specPath = ConvBaseSpecFile.PathBeside(full);
        return File.Exists(specPath) ? ConvBaseSpecFile.Read(specPath).ApplyTo(withFile) : withFile;
    }
}
