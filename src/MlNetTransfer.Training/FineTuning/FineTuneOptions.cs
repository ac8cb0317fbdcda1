using MlNetTransfer.Training.Heads;

namespace MlNetTransfer.Training.FineTuning;

/// <summary>Optimizer of the TorchSharp training.</summary>
public enum OptimizerKind
{
    /// <summary>SGD with momentum 0.9 (the PyTorch transfer-learning tutorial). Default.</summary>
    Sgd,
    /// <summary>AdamW (decoupled weight decay).</summary>
    AdamW,
}

/// <summary>Learning-rate schedule of each phase.</summary>
public enum ScheduleKind
{
    /// <summary>Cosine from lr to ~0, no warmup. Default.</summary>
    Cosine,
    /// <summary>fastai's one-cycle: warm up over the first 25 % from lr/25, then cosine down to ~0.</summary>
    OneCycle,
}

/// <summary>
/// The fine-tuning recipe (Keras guide / fastai <c>fine_tune</c>): train the head on the frozen base, then unfreeze the
/// top block(s) and train them with the head, the block at a lower learning rate; keep the best validation epoch.
/// </summary>
public sealed record FineTuneOptions
{
    /// <summary>Blocks to unfreeze: a block name (that block and all above it) or a count from the top. Default "1".</summary>
    public string Unfreeze { get; init; } = "1";

    /// <summary>Head on the pooled features. Default linear.</summary>
    public HeadKind Head { get; init; } = HeadKind.Linear;

    /// <summary>Epochs of the head alone on the frozen base. Default 5.</summary>
    public int HeadEpochs { get; init; } = 5;

    /// <summary>Epochs of block + head. 0 trains the head only (feature extraction). Default 10.</summary>
    public int Epochs { get; init; } = 10;

    /// <summary>Peak learning rate of the head. Default 2e-3.</summary>
    public double LearningRate { get; init; } = 2e-3;

    /// <summary>In the fine-tuning phase the head runs at <see cref="LearningRate"/> x this. Default 1.</summary>
    public double FineTuneHeadFactor { get; init; } = 1.0;

    /// <summary>
    /// The unfrozen block runs at <see cref="LearningRate"/> x this (discriminative rates). Default 0.5, i.e. 1e-3, the
    /// PyTorch tutorial's rate: at 0.1 the block hardly moved in 10 epochs on hymenoptera (docs/fine-tuning.md).
    /// </summary>
    public double BlockLearningRateFactor { get; init; } = 0.5;

    /// <summary>Default SGD with momentum: on hymenoptera it reached lower validation loss than AdamW at any tried rate (docs/fine-tuning.md).</summary>
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.Sgd;

    /// <summary>Default cosine (the SGD runs); one-cycle adds a warmup.</summary>
    public ScheduleKind Schedule { get; init; } = ScheduleKind.Cosine;

    /// <summary>Weight decay. Default 1e-4 (SGD's usual; use ~1e-2 with AdamW).</summary>
    public double WeightDecay { get; init; } = 1e-4;

    /// <summary>Mini-batch size. Default 32.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Augmented views cached per training image (random resized crop + flip), besides the plain one. Default 4.</summary>
    public int AugmentedViews { get; init; } = 4;

    /// <summary>Stop after this many fine-tuning epochs without a better validation loss (best of that phase). Default 5.</summary>
    public int Patience { get; init; } = 5;

    /// <summary>Train BatchNorm statistics of the unfrozen block (default false: they stay in inference mode, as Keras advises).</summary>
    public bool TrainBatchNorm { get; init; }

    /// <summary>Share of each class of the training split held out for early stopping when the data has no validation split. Default 0.15.</summary>
    public double HoldOutFraction { get; init; } = 0.15;

    /// <summary>
    /// When validation was held out of the training split, train again on all of it afterwards and keep the epoch that
    /// was best on the held-out share (Keras' and scikit-learn's refit). Default true.
    /// </summary>
    public bool RefitAfterHoldOut { get; init; } = true;

    /// <summary>TorchSharp threads; null = all cores. Same seed, data and threads give bit-identical weights.</summary>
    public int? Threads { get; init; }
}
