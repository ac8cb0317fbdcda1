using System.Collections;
using System.Globalization;
using System.Reflection;
using MlNetTransfer.Backbones;
using MlNetTransfer.Data;
using MlNetTransfer.Featurization;
using MlNetTransfer.Onnx;

namespace MlNetTransfer.Training;

/// <summary>
/// Everything <see cref="ImageClassifierTrainer"/> needs: the conv base, the mode and head, how data is used, what
/// counts as a bad image, how images run through the base, and the recipe of the TorchSharp heads and fine-tuning.
/// Every default is what the README's figures were made with. <see cref="Validate()"/> refuses, before any work, an option
/// out of range or one that does nothing on the path it is given for.
/// </summary>
public sealed record ImageClassifierTrainerOptions
{
    /// <summary>The conv base. Default: the embedded <c>resnet18</c>. <see cref="ImageClassifierTrainer.Retrain(string, string, IProgress{Progress.ProgressEvent}?, CancellationToken)"/> takes the model's.</summary>
    public ConvBasePreset ConvBase { get; init; } = ConvBaseRegistry.Get(ConvBaseRegistry.DefaultName);

    /// <summary>Default <see cref="TrainingMode.FeatureExtraction"/> (the console's <c>train</c> defaults to <see cref="TrainingMode.Auto"/>). <see cref="ImageClassifierTrainer.Retrain(string, string, IProgress{Progress.ProgressEvent}?, CancellationToken)"/> takes the model's.</summary>
    public TrainingMode Mode { get; init; } = TrainingMode.FeatureExtraction;

    /// <summary>
    /// The head; null (default) takes the mode's: <see cref="HeadKind.LbfgsSoftmax"/> for feature extraction,
    /// <see cref="HeadKind.TorchSharpSoftmax"/> for fine-tuning. <see cref="ImageClassifierTrainer.Retrain(string, string, IProgress{Progress.ProgressEvent}?, CancellationToken)"/> takes the model's.
    /// </summary>
    public HeadKind? Head { get; init; }

    /// <summary>Seed of the held-out split, folds, augmentation, initialization and batch order. Same seed, data and threads: same model. Default 1.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>ONNX Runtime and TorchSharp threads; null = all cores. Results are reproducible for a given count.</summary>
    public int? Threads { get; init; }

    /// <summary>How the labelled images are used (the held-out share when there is no validation split).</summary>
    public DatasetOptions Data { get; init; } = new();

    /// <summary>What counts as a bad image (size limits, truncation): checked as each image is read.</summary>
    public ImageValidationOptions ImageChecks { get; init; } = new();

    /// <summary>How images run through the conv base, on which device, and the cache of what it computed.</summary>
    public FeaturizerOptions Featurizer { get; init; } = new();

    /// <summary>
    /// Also train on left-right flipped copies: the L-BFGS head gets each training image's mirror image as an extra row;
    /// the TorchSharp heads' random crops are flipped at random. Turn off where orientation carries meaning. Default true.
    /// </summary>
    public bool Mirror { get; init; } = true;

    /// <summary>
    /// Flip test-time augmentation, folded into the saved graph: each image and its mirror image go through the conv base
    /// and the head's input is the mean of the two, so the stock ML.NET zip predicts from both (about twice the
    /// inference time). Off by default: docs/fine-tuning.md measured it. Continued training keeps the model's setting.
    /// </summary>
    public bool TestTimeFlip { get; init; }

    /// <summary>
    /// Temperature scaling (on by default): after training, one temperature is fitted on held-out predictions (the
    /// L-BFGS head's out-of-fold predictions of the training images; for a TorchSharp head, the images that chose its
    /// epoch) and folded into the saved head's weights, so the stock zip's <c>Score</c> is calibrated. The predicted
    /// class, and so accuracy, is unchanged. The report shows calibration error before and after.
    /// </summary>
    public bool Calibrate { get; init; } = true;

    /// <summary>
    /// The novelty score (on by default): the saved zip gets a second output column, <c>Novelty</c> (a one-value vector),
    /// which rises as an image lies farther from every class's training images (the Mahalanobis distance of its pooled
    /// features to the nearest class mean, under a shrunk covariance fitted on the training images). Its threshold, at
    /// <see cref="UnknownFalseAlarmRate"/>, is stored in the metadata; <c>ImageClassifier</c> and <c>predict</c> answer
    /// "unknown" above it. Needs pooled features of at most 4,096 values (not Flatten pooling).
    /// </summary>
    public bool Novelty { get; init; } = true;

    /// <summary>
    /// The share of images like the training ones that the stored novelty threshold calls unknown (default 0.05), set on
    /// out-of-fold scores of the training images (5 folds). Lower: fewer good images refused, more strangers let through.
    /// </summary>
    public double UnknownFalseAlarmRate { get; init; } = 0.05;

    /// <summary>
    /// What the data checks do with near-duplicates (cosine at or above <see cref="NearDuplicateThreshold"/>): false
    /// (default) leaves them in and reports them; true uses each once, as exact copies always are: a copy of a training
    /// image is left out of validation and test, a copy under another label after the first, each listed among the
    /// skipped files with the reason. Likely label errors are only reported, never changed.
    /// </summary>
    public bool DropDuplicates { get; init; }

    /// <summary>
    /// The cosine of two images' L2-normalised pooled conv-base features at or above which they count as
    /// near-duplicates. Default 0.92, measured on resnet18's features of caltech101_6 and hymenoptera (868 photos): all
    /// re-encoded copies of a photo, 95 % of those resized to 60 % and 98 % of those cropped by 5 % a side score at or
    /// above it, and 4 distinct photos have a neighbour there (two pairs of sunflowers on white), beside 6 pairs of real
    /// copies in caltech101_6 (docs/console.md, Data checks).
    /// </summary>
    public double NearDuplicateThreshold { get; init; } = 0.92;

    /// <summary>Precision of the conv base: fp32 (default) or int8 (calibrated on training images; the saved model carries it). Feature extraction only.</summary>
    public ConvBasePrecision Precision { get; init; } = ConvBasePrecision.Fp32;

    /// <summary>How the int8 conv base is made, when <see cref="Precision"/> is int8.</summary>
    public Int8QuantizationOptions Int8 { get; init; } = new();

    /// <summary>The L-BFGS head (<see cref="HeadKind.LbfgsSoftmax"/>).</summary>
    public LbfgsHeadOptions Lbfgs { get; init; } = new();

    /// <summary>The recipe of the TorchSharp heads and of fine-tuning.</summary>
    public FineTuningOptions FineTuning { get; init; } = new();

    /// <summary>How <see cref="TrainingMode.Auto"/> searches (its candidates and time budget); leave at its default for the fixed modes.</summary>
    public ModeSearchOptions ModeSearch { get; init; } = new();

    /// <summary>
    /// When the trainer held out a share of the training images itself (the data has no validation split), fit the
    /// final model again on every labelled image with what that share chose (the L2 weight, the epoch). Default true.
    /// A split the user gave is never merged.
    /// </summary>
    public bool Refit { get; init; } = true;

    /// <summary>
    /// Where the TorchSharp runs checkpoint every epoch; null (default) = <c>checkpoints/</c> under the cache root. A
    /// run's checkpoint is named by its data and options, and removed once its model is saved or disposed.
    /// </summary>
    public string? CheckpointFolder { get; init; }

    /// <summary>Continue an interrupted TorchSharp run from its last epoch's checkpoint (same data, options, seed and threads).</summary>
    public bool Resume { get; init; }

    /// <summary>The head this run trains: <see cref="Head"/>, else the mode's default.</summary>
    public HeadKind EffectiveHead => Head ?? (Mode == TrainingMode.FineTuning ? HeadKind.TorchSharpSoftmax : HeadKind.LbfgsSoftmax);

    /// <summary>Whether the head (and fine-tuning) trains in TorchSharp (with <see cref="TrainingMode.Auto"/>: any candidate does).</summary>
    public bool TrainsInTorchSharp => Mode == TrainingMode.Auto
        ? ModeSearch.Candidates.Any(c => c != ModeCandidate.LbfgsHead)
        : Mode == TrainingMode.FineTuning || EffectiveHead != HeadKind.LbfgsSoftmax;

    /// <summary>
    /// The options of one candidate of <see cref="TrainingMode.Auto"/>: its mode, head and blocks, and of the rest only
    /// what that candidate reads (the others' parts at their defaults).
    /// </summary>
    internal ImageClassifierTrainerOptions ForCandidate(ModeCandidate candidate)
    {
        var r = FineTuning;
        var clean = this with { ModeSearch = new ModeSearchOptions() };
        return candidate switch
        {
            ModeCandidate.LbfgsHead => clean with
            {
                Mode = TrainingMode.FeatureExtraction, Head = HeadKind.LbfgsSoftmax, FineTuning = new FineTuningOptions(), Resume = false, CheckpointFolder = null,
            },
            ModeCandidate.MlpHead => clean with
            {
                Mode = TrainingMode.FeatureExtraction, Head = HeadKind.TorchSharpMlp, Lbfgs = new LbfgsHeadOptions(),
                FineTuning = new FineTuningOptions
                {
                    HeadEpochs = r.HeadEpochs, LearningRate = r.LearningRate, Optimizer = r.Optimizer, WeightDecay = r.WeightDecay, Schedule = r.Schedule,
                    BatchSize = r.BatchSize, AugmentedViews = r.AugmentedViews, LabelSmoothing = r.LabelSmoothing,
                },
            },
            _ => clean with
            {
                Mode = TrainingMode.FineTuning, Head = HeadKind.TorchSharpSoftmax, Lbfgs = new LbfgsHeadOptions(),
                FineTuning = r with { Unfreeze = candidate == ModeCandidate.FineTuneTopBlock ? "1" : "2" },
            },
        };
    }

    /// <summary>
    /// Throws <see cref="TrainingOptionsException"/> naming the first option that is out of range or does nothing for
    /// <see cref="ImageClassifierTrainer.Train(string, IProgress{Progress.ProgressEvent}?, CancellationToken)"/>.
    /// </summary>
    public void Validate() => Validate(TrainerTask.Train);

    /// <param name="task">The entry point.</param>
    /// <param name="retrained">For <see cref="TrainerTask.Retrain"/>: the mode of the model continued, when known (the recipe's parts it reads depend on it).</param>
    internal void Validate(TrainerTask task, TrainingMode? retrained = null)
    {
        Require(Data.ValidationFraction is > 0 and < 1, "Data.ValidationFraction", "must be between 0 and 1");
        Require(Data.MinImagesPerClass >= 1, "Data.MinImagesPerClass", "must be at least 1");
        Require(Data.MaxManifestBytes >= 1, "Data.MaxManifestBytes", "must be at least 1");
        Require(ImageChecks.MaxPixels >= 64, "ImageChecks.MaxPixels", "must be at least 64");
        Require(ImageChecks.MinSide >= 1, "ImageChecks.MinSide", "must be at least 1");
        Require(ImageChecks.MaxAspectRatio >= 1, "ImageChecks.MaxAspectRatio", "must be at least 1");
        Require(ImageChecks.MaxFileBytes >= 1, "ImageChecks.MaxFileBytes", "must be at least 1");
        Require(Threads is null or >= 1, "Threads", "must be at least 1");
        Require(Featurizer.BatchSize >= 1, "Featurizer.BatchSize", "must be at least 1");
        Require(Featurizer.DecodeThreads is null or >= 1, "Featurizer.DecodeThreads", "must be at least 1");
        Require(Featurizer.CacheLimitBytes >= 0, "Featurizer.CacheLimitBytes", "must be >= 0");
        Require(Featurizer.Shards.Count == 0 || Featurizer.UseCache, "Featurizer.Shards", "needs the cache (Featurizer.UseCache = true): shards are imported into it");
        Require(UnknownFalseAlarmRate is > 0 and < 0.5, "UnknownFalseAlarmRate", "must be above 0 and below 0.5");
        Require(NearDuplicateThreshold is > 0 and <= 1, "NearDuplicateThreshold", "must be above 0 and at most 1");
        if (task != TrainerTask.Train)
            Require(!DropDuplicates, "DropDuplicates", $"does nothing for {(task == TrainerTask.Retrain ? "continued training (Retrain)" : "the learning-rate range test")}: the data checks run in Train; leave it at its default (false)");
        Require(Lbfgs.L2 is null or >= 0, "Lbfgs.L2", "must be >= 0");
        Require(Lbfgs.L1 >= 0, "Lbfgs.L1", "must be >= 0");
        Require(Lbfgs.Folds >= 2, "Lbfgs.Folds", "must be at least 2");
        Require(Lbfgs.L2Grid.Count > 0 && Lbfgs.L2Grid.All(v => v >= 0 && float.IsFinite(v)), "Lbfgs.L2Grid", "must hold at least one finite value >= 0");
        if (Lbfgs.L2 is not null)
            Unused(Lbfgs, new LbfgsHeadOptions(), "Lbfgs", ["L1", "L2"], "a given Lbfgs.L2 (no cross-validation chooses it)");
        var r = FineTuning;
        Require(r.Epochs >= 0, "FineTuning.Epochs", "must be >= 0");
        Require(r.HeadEpochs >= 0, "FineTuning.HeadEpochs", "must be >= 0");
        Require(double.IsFinite(r.LearningRate) && r.LearningRate > 0, "FineTuning.LearningRate", "must be a positive number");
        Require(double.IsFinite(r.BlockLearningRateFactor) && r.BlockLearningRateFactor > 0, "FineTuning.BlockLearningRateFactor", "must be a positive number");
        Require(double.IsFinite(r.FineTuneHeadFactor) && r.FineTuneHeadFactor > 0, "FineTuning.FineTuneHeadFactor", "must be a positive number");
        Require(r.WeightDecay is null or >= 0, "FineTuning.WeightDecay", "must be >= 0");
        Require(r.BatchSize >= 1, "FineTuning.BatchSize", "must be at least 1");
        Require(r.AugmentedViews >= 0, "FineTuning.AugmentedViews", "must be >= 0");
        Require(r.Patience >= 1, "FineTuning.Patience", "must be at least 1");
        Require(r.LabelSmoothing is >= 0 and < 1, "FineTuning.LabelSmoothing", "must be at least 0 and below 1");
        Require(!string.IsNullOrWhiteSpace(r.Unfreeze), "FineTuning.Unfreeze", "must name a block or give a count of blocks");

        if (Mode == TrainingMode.Auto)
        {
            ValidateAuto(task);
            return;
        }
        Unused(ModeSearch, new ModeSearchOptions(), "ModeSearch", [], $"Mode = {Mode} (it is for Mode = Auto)");

        var head = EffectiveHead;
        if (task == TrainerTask.Train && TrainsInTorchSharp)
        {
            if (Mode == TrainingMode.FeatureExtraction)
                Require(r.HeadEpochs >= 1, "FineTuning.HeadEpochs", $"must be at least 1 for Head = {head} on the frozen base: it is all the training there");
            else
                Require(r.HeadEpochs + r.Epochs >= 1, "FineTuning.Epochs", "and FineTuning.HeadEpochs are both 0: nothing would train");
        }
        if (task != TrainerTask.Retrain)
        {
            if (Mode == TrainingMode.FineTuning && head == HeadKind.LbfgsSoftmax)
                throw new TrainingOptionsException("Head", "Head = LbfgsSoftmax cannot be fine-tuned (ML.NET's L-BFGS trains the head alone): use Head = TorchSharpSoftmax or TorchSharpMlp, or Mode = FeatureExtraction.");
            if (Precision == ConvBasePrecision.Int8 && Mode == TrainingMode.FineTuning)
                throw new TrainingOptionsException("Precision", "Precision = Int8 is for Mode = FeatureExtraction: fine-tuning trains the fp32 block.");
        }
        if (task == TrainerTask.FindLearningRate)
            Require(!TestTimeFlip, "TestTimeFlip", "does nothing for the learning-rate range test: it saves no model");
        if (task == TrainerTask.FindLearningRate && Head == HeadKind.LbfgsSoftmax)
            throw new TrainingOptionsException("Head", "Head = LbfgsSoftmax has no learning rate to find: lr-find is for Head = TorchSharpSoftmax or TorchSharpMlp, or Mode = FineTuning.");

        // What a path does not use must be left as it is: an option that is set and ignored is a mistake the user cannot see.
        bool torch = task != TrainerTask.Train || TrainsInTorchSharp;
        bool fineTune = task != TrainerTask.Retrain && Mode == TrainingMode.FineTuning;
        string path = task switch
        {
            TrainerTask.Retrain => "continued training (Retrain)",
            TrainerTask.FindLearningRate => "the learning-rate range test",
            _ when !torch => "Head = LbfgsSoftmax",
            _ when !fineTune => $"Mode = FeatureExtraction with Head = {head}",
            _ => "Mode = FineTuning",
        };
        if (!torch)
        {
            Unused(FineTuning, new FineTuningOptions(), "FineTuning", [], path);
            Require(!Resume, "Resume", $"does nothing for {path}: it has no epochs to resume (it continues an interrupted TorchSharp run)");
            Require(CheckpointFolder is null, "CheckpointFolder", $"does nothing for {path}: it has no epochs to checkpoint");
        }
        else
        {
            Unused(Lbfgs, new LbfgsHeadOptions(), "Lbfgs", [], path);
            // Per path, the recipe's parts it reads; the rest must be left alone.
            string[] headOnFrozenBase = ["HeadEpochs", "LearningRate", "Optimizer", "WeightDecay", "Schedule", "BatchSize", "AugmentedViews", "LabelSmoothing"];
            // Continuing a fine-tuned model skips the head phase: its block and head train on together.
            string[] continuedFineTuning = ["Epochs", "LearningRate", "BlockLearningRateFactor", "FineTuneHeadFactor", "Optimizer", "WeightDecay", "Schedule",
                "BatchSize", "AugmentedViews", "Patience", "TrainBatchNorm", "LabelSmoothing", "Views"];
            string[] used = task switch
            {
                TrainerTask.FindLearningRate => Mode == TrainingMode.FineTuning
                    ? ["Unfreeze", "HeadEpochs", "LearningRate", "Schedule", "BlockLearningRateFactor", "FineTuneHeadFactor", "Optimizer", "WeightDecay", "BatchSize", "AugmentedViews", "TrainBatchNorm", "LabelSmoothing", "Views"]
                    : ["Optimizer", "WeightDecay", "BatchSize", "AugmentedViews", "LabelSmoothing"],
                TrainerTask.Retrain => retrained switch
                {
                    TrainingMode.FineTuning => continuedFineTuning,
                    TrainingMode.FeatureExtraction => headOnFrozenBase,
                    _ => headOnFrozenBase.Union(continuedFineTuning).ToArray(), // the model is not read yet: it decides
                },
                _ when fineTune => typeof(FineTuningOptions).GetProperties().Select(p => p.Name).ToArray(),
                _ => headOnFrozenBase,
            };
            Unused(FineTuning, new FineTuningOptions(), "FineTuning", used, path);
        }
        if (task == TrainerTask.FindLearningRate)
        {
            Require(!Resume, "Resume", $"does nothing for {path}: it has no epochs to resume");
            Require(CheckpointFolder is null, "CheckpointFolder", $"does nothing for {path}: it has no epochs to checkpoint");
            Require(Refit, "Refit", $"does nothing for {path}: it fits no model");
            Require(Data.ValidationFraction == new DatasetOptions().ValidationFraction, "Data.ValidationFraction", $"does nothing for {path}: it sweeps on every training image");
        }
        if (task == TrainerTask.Retrain)
        {
            Require(Precision == ConvBasePrecision.Fp32, "Precision", "does nothing for continued training (Retrain): the model's conv base is trained further as it is");
        }
        if (Precision != ConvBasePrecision.Int8)
            Unused(Int8, new Int8QuantizationOptions(), "Int8", [], "Precision = Fp32");
        // The TorchSharp runs flip only their crops: with none there is nothing to flip.
        if (torch && !Mirror && FineTuning.AugmentedViews == 0)
            throw new TrainingOptionsException("Mirror", $"Mirror = false does nothing for {path} with FineTuning.AugmentedViews = 0: only the augmented crops are flipped.");
    }

    /// <summary>Mode = Auto: its own options, then each candidate's as that candidate reads them, then nothing set that no candidate reads.</summary>
    private void ValidateAuto(TrainerTask task)
    {
        if (task != TrainerTask.Train)
            throw new TrainingOptionsException("Mode", task == TrainerTask.Retrain
                ? "Mode = Auto does nothing for continued training (Retrain): the model's mode is kept; leave it at its default."
                : "Mode = Auto is for training: the learning-rate range test needs a fixed mode (FeatureExtraction with a TorchSharp head, or FineTuning).");
        var search = ModeSearch;
        Require(Head is null, "Head", "is chosen by Mode = Auto (among ModeSearch.Candidates); give Mode = FeatureExtraction or FineTuning to fix the head");
        Require(FineTuning.Unfreeze == new FineTuningOptions().Unfreeze, "FineTuning.Unfreeze", "is chosen by Mode = Auto (the top block, then the top two); give Mode = FineTuning to fix it");
        Require(Precision == ConvBasePrecision.Fp32, "Precision", "= Int8 is for Mode = FeatureExtraction: Mode = Auto also fine-tunes, which trains the fp32 block");
        Require(search.Candidates.Count > 0, "ModeSearch.Candidates", "must hold at least one candidate");
        Require(search.Candidates.Distinct().Count() == search.Candidates.Count, "ModeSearch.Candidates", "must not name a candidate twice");
        Require(search.TimeBudget > TimeSpan.Zero, "ModeSearch.TimeBudget", "must be positive");
        foreach (var candidate in search.Candidates)
            ForCandidate(candidate).Validate(task);
        var candidates = search.Candidates;
        bool torch = candidates.Any(c => c != ModeCandidate.LbfgsHead);
        bool fineTune = candidates.Any(c => c is ModeCandidate.FineTuneTopBlock or ModeCandidate.FineTuneTopTwoBlocks);
        if (!candidates.Contains(ModeCandidate.LbfgsHead))
            Unused(Lbfgs, new LbfgsHeadOptions(), "Lbfgs", [], "Mode = Auto without the LbfgsHead candidate");
        if (!torch)
        {
            Unused(FineTuning, new FineTuningOptions(), "FineTuning", [], "Mode = Auto with only the LbfgsHead candidate");
            Require(!Resume, "Resume", "does nothing for Mode = Auto with only the LbfgsHead candidate: it has no epochs to resume");
            Require(CheckpointFolder is null, "CheckpointFolder", "does nothing for Mode = Auto with only the LbfgsHead candidate: it has no epochs to checkpoint");
        }
        else if (!fineTune)
            Unused(FineTuning, new FineTuningOptions(), "FineTuning", ["HeadEpochs", "LearningRate", "Optimizer", "WeightDecay", "Schedule", "BatchSize", "AugmentedViews", "LabelSmoothing"],
                "Mode = Auto without a fine-tuning candidate");
    }

    private static void Require(bool condition, string option, string problem)
    {
        if (!condition)
            throw new TrainingOptionsException(option, $"{option} {problem}.");
    }

    /// <summary>Refuses the first property of <paramref name="actual"/> that differs from <paramref name="defaults"/> and is not in <paramref name="used"/>.</summary>
    private static void Unused<T>(T actual, T defaults, string prefix, IReadOnlyCollection<string> used, string path)
    {
        foreach (var property in typeof(T).GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (!property.CanWrite || used.Contains(property.Name))
                continue;
            var a = property.GetValue(actual);
            var d = property.GetValue(defaults);
            bool same = a is IEnumerable ea && d is IEnumerable ed && a is not string
                ? ea.Cast<object>().SequenceEqual(ed.Cast<object>())
                : Equals(a, d);
            if (!same)
                throw new TrainingOptionsException($"{prefix}.{property.Name}",
                    $"{prefix}.{property.Name} = {Format(a)} does nothing for {path}; leave it at its default ({Format(d)}).");
        }
    }

    private static string Format(object? value) => value switch
    {
        null => "null",
        bool b => b ? "true" : "false",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        IEnumerable e and not string => "[" + string.Join(", ", e.Cast<object>().Select(Format)) + "]",
        _ => value.ToString() ?? "",
    };
}

/// <summary>Which entry point of the trainer options are checked for.</summary>
internal enum TrainerTask
{
    Train,
    Retrain,
    FindLearningRate,
}
