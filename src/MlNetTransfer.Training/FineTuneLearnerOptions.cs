using MlNetTransfer.Backbones;
using MlNetTransfer.Data;
using MlNetTransfer.Featurization;
using MlNetTransfer.Training.FineTuning;

namespace MlNetTransfer.Training;

/// <summary>Options of <see cref="FineTuneLearner"/>.</summary>
public sealed record FineTuneLearnerOptions
{
    /// <summary>The conv base. Default: the embedded <c>resnet18</c>.</summary>
    public ConvBasePreset ConvBase { get; init; } = ConvBaseRegistry.Get(ConvBaseRegistry.DefaultName);

    /// <summary>Seed of splits, augmentation, initialization and batch order. Default 1.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>How the data is read and split.</summary>
    public DatasetOptions Dataset { get; init; } = new();

    /// <summary>
    /// True: unfreeze the top block(s) and train them with the head. False: feature extraction with a TorchSharp head
    /// (the MLP head, or a linear one) on the frozen base.
    /// </summary>
    public bool FineTune { get; init; } = true;

    /// <summary>The recipe.</summary>
    public FineTuneOptions Recipe { get; init; } = new();

    /// <summary>Folder for per-epoch checkpoints (null: none). The console uses <c>&lt;model&gt;.checkpoint/</c>.</summary>
    public string? CheckpointFolder { get; init; }

    /// <summary>Continue from the checkpoints in <see cref="CheckpointFolder"/> (same data, options, seed and threads).</summary>
    public bool Resume { get; init; }

    /// <summary>Batch size and threads of ONNX Runtime (the frozen prefix).</summary>
    public FeaturizerOptions Featurizer { get; init; } = new();
}
