using MlNetTransfer.Featurization;

namespace MlNetTransfer.Training;

/// <summary>Optimizer of the TorchSharp heads and of fine-tuning.</summary>
public enum OptimizerKind
{
    /// <summary>SGD with momentum 0.9 (the PyTorch transfer-learning tutorial). Default.</summary>
    Sgd,

    /// <summary>AdamW (decoupled weight decay).</summary>
    AdamW,
}

/// <summary>Learning-rate schedule of each training phase.</summary>
public enum LearningRateSchedule
{
    /// <summary>Cosine from the peak rate to ~0, no warmup. Default.</summary>
    Cosine,

    /// <summary>fastai's one-cycle: warm up over the first 25 % from rate/25, then cosine down to ~0.</summary>
    OneCycle,
}

/// <summary>
/// The recipe of the TorchSharp heads and of fine-tuning (the Keras guide, fastai's <c>fine_tune</c>): train the head on
/// the frozen base, then, when fine-tuning, unfreeze the top block(s) and train them with the head, the block at a lower
/// learning rate; keep the best validation epoch. Defaults are what docs/fine-tuning.md measured.
/// </summary>
public sealed record FineTuningOptions
{
    /// <summary>Fine-tuning: a block name (that block and all above it train, e.g. <c>stage4</c>, <c>block5</c>) or a count from the top. Default "1".</summary>
    public string Unfreeze { get; init; } = "1";

    /// <summary>Epochs of the head alone on the frozen base (every view once per epoch). Default 5.</summary>
    public int HeadEpochs { get; init; } = 5;

    /// <summary>Fine-tuning: epochs of block + head (early stopping may end sooner). Default 10.</summary>
    public int Epochs { get; init; } = 10;

    /// <summary>Peak learning rate of the head. Default 2e-3.</summary>
    public double LearningRate { get; init; } = 2e-3;

    /// <summary>Fine-tuning: the head runs at <see cref="LearningRate"/> x this while the block trains. Default 1.</summary>
    public double FineTuneHeadFactor { get; init; } = 1.0;

    /// <summary>
    /// Fine-tuning: the unfrozen block runs at <see cref="LearningRate"/> x this (discriminative rates). Default 0.5, i.e.
    /// 1e-3, the PyTorch tutorial's rate for the block (docs/fine-tuning.md).
    /// </summary>
    public double BlockLearningRateFactor { get; init; } = 0.5;

    /// <summary>Default <see cref="OptimizerKind.Sgd"/> (docs/fine-tuning.md compares it with AdamW).</summary>
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.Sgd;

    /// <summary>Weight decay; null (default) takes the optimizer's: 1e-4 for SGD, 1e-2 for AdamW.</summary>
    public double? WeightDecay { get; init; }

    /// <summary>The weight decay used: <see cref="WeightDecay"/>, else the optimizer's default.</summary>
    public double EffectiveWeightDecay => WeightDecay ?? DefaultWeightDecay(Optimizer);

    /// <summary>The weight decay an optimizer gets when none is given: SGD 1e-4, AdamW 1e-2.</summary>
    public static double DefaultWeightDecay(OptimizerKind optimizer) => optimizer == OptimizerKind.Sgd ? 1e-4 : 1e-2;

    /// <summary>Default <see cref="LearningRateSchedule.Cosine"/>.</summary>
    public LearningRateSchedule Schedule { get; init; } = LearningRateSchedule.Cosine;

    /// <summary>Mini-batch size. Default 32.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Augmented views (random resized crop, and a random flip unless <see cref="ImageClassifierTrainerOptions.Mirror"/> is off) per training image, besides the plain one. Default 4.</summary>
    public int AugmentedViews { get; init; } = 4;

    /// <summary>
    /// Fine-tuning: where the frozen part's activations of every training view are kept while the block trains. Default
    /// <see cref="ViewStorage.DiskHalf"/>: a temp file of 16-bit floats, so memory does not grow with the data.
    /// </summary>
    public ViewStorage Views { get; init; } = ViewStorage.DiskHalf;

    /// <summary>Fine-tuning: stop after this many epochs without a better validation loss. Default 5.</summary>
    public int Patience { get; init; } = 5;

    /// <summary>
    /// Label smoothing of the training loss of the TorchSharp heads and of fine-tuning: the target is this share spread
    /// evenly over the classes, the rest on the label (0 to below 1). Default 0 (docs/fine-tuning.md measured 0.1).
    /// </summary>
    public double LabelSmoothing { get; init; }

    /// <summary>Fine-tuning: also update the BatchNorm statistics of the unfrozen block (default false: inference mode, as Keras advises).</summary>
    public bool TrainBatchNorm { get; init; }
}
