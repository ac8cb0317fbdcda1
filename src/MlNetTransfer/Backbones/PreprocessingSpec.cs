namespace MlNetTransfer.Backbones;

/// <summary>Memory layout of a conv base's input tensor.</summary>
public enum TensorLayout
{
    /// <summary>Batch, channels, height, width (PyTorch, CNTK, ML.NET's ExtractPixels default).</summary>
    NCHW,
    /// <summary>Batch, height, width, channels (Keras / TensorFlow).</summary>
    NHWC,
}

/// <summary>Order of the colour channels the conv base was trained on.</summary>
public enum ChannelOrder
{
    RGB,
    /// <summary>Caffe-style models (Keras VGG16, the CNTK ResNet18).</summary>
    BGR,
}

/// <summary>How a spatial conv-base output becomes a feature vector.</summary>
public enum FeaturePooling
{
    /// <summary>Global average pooling (Keras <c>pooling="avg"</c>). Default.</summary>
    Average,
    /// <summary>Global max pooling (Keras <c>pooling="max"</c>).</summary>
    Max,
    /// <summary>Flatten the whole map (Keras <c>Flatten()</c>): large vectors, e.g. 7x7x512 = 25088 for VGG16.</summary>
    Flatten,
}

/// <summary>
/// A per-pixel mean image stored as an initializer of an ONNX file, subtracted instead of a per-channel mean
/// (the ResNet18 of Microsoft.ML.DnnImageFeaturizer.ResNet18 was trained that way).
/// </summary>
/// <param name="OnnxFile">ONNX file holding the initializer.</param>
/// <param name="Initializer">Name of a float initializer of shape [1, 3, height, width], in the model's channel order.</param>
public sealed record MeanImageReference(string OnnxFile, string Initializer);

/// <summary>
/// What a conv base expects of its input. Pixels arrive as planar RGB floats in 0..255 (ML.NET's
/// <c>ExtractPixels</c> default) and become <c>x = (pixel * Scale - Mean) / Std</c> in <see cref="ChannelOrder"/>,
/// laid out as <see cref="Layout"/>. This is the one place each preset states it: the featurizer graph,
/// the training engine and the export all read it from here.
/// </summary>
public sealed record PreprocessingSpec
{
    /// <summary>Width images are resized to. Default 224.</summary>
    public int Width { get; init; } = 224;

    /// <summary>Height images are resized to. Default 224.</summary>
    public int Height { get; init; } = 224;

    /// <summary>Layout of the model's input tensor. Default NCHW.</summary>
    public TensorLayout Layout { get; init; } = TensorLayout.NCHW;

    /// <summary>Channel order the model expects. Default RGB.</summary>
    public ChannelOrder ChannelOrder { get; init; } = ChannelOrder.RGB;

    /// <summary>Multiplier applied to 0..255 pixels first (1/255 for torchvision models). Default 1.</summary>
    public float Scale { get; init; } = 1f;

    /// <summary>Per-channel mean subtracted after scaling, in <see cref="ChannelOrder"/>. Default zeros.</summary>
    public float[] Mean { get; init; } = [0f, 0f, 0f];

    /// <summary>Per-channel divisor applied after the mean, in <see cref="ChannelOrder"/>. Default ones.</summary>
    public float[] Std { get; init; } = [1f, 1f, 1f];

    /// <summary>A mean image subtracted instead of <see cref="Mean"/>; null for none.</summary>
    public MeanImageReference? MeanImage { get; init; }

    /// <summary>Throws when the spec cannot describe a valid transformation.</summary>
    public void Validate(string source)
    {
        if (Width < 8 || Height < 8 || Width > 4096 || Height > 4096)
            throw new ConvBaseException($"{source}: input size {Width}x{Height} is out of range (8..4096).");
        if (Mean.Length != 3 || Std.Length != 3)
            throw new ConvBaseException($"{source}: mean and std need exactly 3 values (one per channel).");
        if (Std.Any(s => s == 0f || !float.IsFinite(s)) || Mean.Any(m => !float.IsFinite(m)) || !float.IsFinite(Scale) || Scale == 0f)
            throw new ConvBaseException($"{source}: scale, mean and std must be finite and std/scale non-zero.");
    }

    /// <summary>A stable text form, used in cache keys and model metadata.</summary>
    public string Describe() =>
        FormattableString.Invariant(
            $"{Width}x{Height} {Layout} {ChannelOrder} scale={Scale:R} mean=[{string.Join(",", Mean.Select(m => m.ToString("R", System.Globalization.CultureInfo.InvariantCulture)))}] std=[{string.Join(",", Std.Select(m => m.ToString("R", System.Globalization.CultureInfo.InvariantCulture)))}]") +
        (MeanImage is null ? "" : $" meanImage={Path.GetFileName(MeanImage.OnnxFile)}:{MeanImage.Initializer}");
}
