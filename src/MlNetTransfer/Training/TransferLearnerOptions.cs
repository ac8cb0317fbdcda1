using MlNetTransfer.Backbones;
using MlNetTransfer.Data;
using MlNetTransfer.Featurization;

namespace MlNetTransfer.Training;

/// <summary>Options of <see cref="TransferLearner"/>. Every default is what the README's figures were made with.</summary>
public sealed record TransferLearnerOptions
{
    /// <summary>The conv base. Default: the embedded <c>resnet18</c>.</summary>
    public ConvBasePreset ConvBase { get; init; } = ConvBaseRegistry.Get(ConvBaseRegistry.DefaultName);

    /// <summary>Seed of splits, folds and trainers. Same seed, data and threads: same model. Default 1.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>How the data is read and split.</summary>
    public DatasetOptions Dataset { get; init; } = new();

    /// <summary>The dense head's regularization.</summary>
    public LinearHeadOptions Head { get; init; } = new();

    /// <summary>Also train on each training image's mirror image (left-right flip). Default true.</summary>
    public bool MirrorAugmentation { get; init; } = true;

    /// <summary>Precision of the conv base: fp32 (default) or int8 (calibrated on training images; the saved model carries it).</summary>
    public ConvBasePrecision Precision { get; init; } = ConvBasePrecision.Fp32;

    /// <summary>How the int8 conv base is made, when <see cref="Precision"/> is int8.</summary>
    public Onnx.Int8QuantizationOptions Int8 { get; init; } = new();

    /// <summary>Batch size and threads of the featurizer.</summary>
    public FeaturizerOptions Featurizer { get; init; } = new();
}
