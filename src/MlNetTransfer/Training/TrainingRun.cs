using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.ML;
using MlNetTransfer.Backbones;
using MlNetTransfer.Data;
using MlNetTransfer.Evaluation;
using MlNetTransfer.Featurization;
using MlNetTransfer.Inference;
using MlNetTransfer.Onnx;
using MlNetTransfer.Progress;
using MlNetTransfer.Training.Backends;
using Onnx;

namespace MlNetTransfer.Training;

/// <summary>
/// One training run's shared state: the data, the conv base and where it is cut, the one featurization pipeline (one
/// ONNX Runtime session of the cut, for every split), the views wanted of training images, and the split plan. Every
/// entry point of the trainer goes through it.
/// </summary>
internal sealed class TrainingRun : IDisposable
{
    private readonly List<string> _checkpoints = [];

    private TrainingRun(ImageClassifierTrainerOptions options, ImageDataset dataset, BaseSource source, HeadKind head, FreezeBoundary? freeze,
        GraphPrefix prefix, ActivationPipeline pipeline)
    {
        Options = options;
        Dataset = dataset;
        Source = source;
        Head = head;
        Freeze = freeze;
        Prefix = prefix;
        Pipeline = pipeline;
        Ml = new MLContext(options.Seed);
        // The L-BFGS head trains on each image and its mirror image; the TorchSharp heads on the plain view and seeded crops.
        TrainPlan = head == HeadKind.LbfgsSoftmax
            ? new ViewPlan(options.Mirror, 0, false, 0)
            : new ViewPlan(false, options.FineTuning.AugmentedViews, options.Mirror, options.Seed);
    }

    public ImageClassifierTrainerOptions Options { get; }

    public MLContext Ml { get; }

    /// <summary>The data, without the files found unreadable while featurizing.</summary>
    public ImageDataset Dataset { get; private set; }

    public BaseSource Source { get; }

    public ConvBasePreset Preset => Source.Preset;

    public HeadKind Head { get; }

    /// <summary>Where the graph is cut for fine-tuning (null: a head on the frozen base).</summary>
    public FreezeBoundary? Freeze { get; }

    public GraphPrefix Prefix { get; }

    public ActivationPipeline Pipeline { get; }

    /// <summary>The views of each training image (held-out and validation images get the plain one).</summary>
    public ViewPlan TrainPlan { get; }

    /// <summary>The checkpoint files this run wrote (removed once its model is saved).</summary>
    public IReadOnlyList<string> Checkpoints => _checkpoints;

    /// <summary>Length of the graph's feature output (what the head sees, before an MLP's hidden layer).</summary>
    public int FeatureLength => Source.FeatureLength;

    public static TrainingRun Start(ImageClassifierTrainerOptions options, ImageDataset dataset, BaseSource source, HeadKind head,
        IProgress<ProgressEvent>? progress, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        FreezeBoundary? freeze = options.Mode == TrainingMode.FineTuning
            ? FreezeBoundary.Resolve(source.Preset, source.Composed.Graph, options.FineTuning.Unfreeze, FeaturizerGraphBuilder.BaseInputTensor(source.Composed))
            : null;
        if (freeze is not null)
            progress.Note($"unfreezing {string.Join(", ", freeze.Unfrozen.Select(b => b.Name))}; the frozen part runs once per view, up to {freeze.Tensor}");
        var prefix = source.Prefix(freeze?.Tensor ?? FeaturizerGraphBuilder.FeaturesTensor);
        // Freeze-boundary activations are large (200 KB a view at resnet18's stage4): fine-tuning keeps them where its options say; pooled features stay in memory.
        var pipeline = new ActivationPipeline(new MLContext(options.Seed), prefix, source.Preset.Preprocessing, options.Threads, options.Featurizer, options.ImageChecks,
            freeze is not null ? options.FineTuning.Views : ViewStorage.Memory);
        try
        {
            if (pipeline.DeviceNote is not null)
                progress.Note(pipeline.DeviceNote, warning: true);
            ImportShards(options, pipeline, progress);
            return new TrainingRun(options, dataset, source, head, freeze, prefix, pipeline);
        }
        catch
        {
            pipeline.Dispose();
            throw;
        }
    }

    /// <summary>Shards made elsewhere go into this machine's cache first, keyed by image content.</summary>
    private static void ImportShards(ImageClassifierTrainerOptions options, ActivationPipeline pipeline, IProgress<ProgressEvent>? progress)
    {
        if (options.Featurizer.Shards.Count == 0)
            return;
        var store = pipeline.Store!;
        int imported = 0;
        foreach (var file in options.Featurizer.Shards)
            imported += FeatureShard.ImportInto(store, file);
        progress.Note($"imported {imported} images' views from {options.Featurizer.Shards.Count} shard(s) into {store.Folder}");
    }

    public ViewSet Featurize(IReadOnlyList<LabeledImage> images, ViewPlan plan, string stage, IProgress<ProgressEvent>? progress, CancellationToken cancellationToken) =>
        images.Count == 0 ? ViewSet.Empty(Pipeline.Shape) : Pipeline.Run(images, plan, stage, progress, cancellationToken);

    public void ReportSkipped(ViewSet set, IProgress<ProgressEvent>? progress)
    {
        foreach (var bad in set.Unreadable)
            progress.Note($"skipped {bad.Path}: {bad.Reason}", warning: true);
        foreach (var used in set.Warnings)
            progress.Note($"used despite: {used.Path}: {used.Reason}", warning: true);
    }

    /// <summary>Files found unreadable while featurizing join the skipped list; the data must still be trainable.</summary>
    public void Forget(IReadOnlyCollection<SkippedFile> unreadable) => Dataset = Dataset.Without(unreadable, Options.Data.MinImagesPerClass);

    public void PruneCache()
    {
        if (Options.Featurizer.UseCache)
            ActivationStore.Prune(Options.Featurizer.CacheFolder, Options.Featurizer.CacheLimitBytes);
    }

    /// <summary>A TorchSharp job on these views; <paramref name="checkpointName"/> (null: none) names its checkpoint file among the run's.</summary>
    public TorchTrainingJob Job(ViewSet train, ViewSet validation, HeadWeights? warm, (string Phase, int Epoch)? keep, string? checkpointName, int? keepHeadEpoch = null)
    {
        var job = new TorchTrainingJob
        {
            // The nodes above the boundary are imported only when there are any (fine-tuning); a head on the frozen base needs none.
            Composed = Freeze is not null ? Source.Composed : null,
            Boundary = Prefix.Tensor,
            FeatureLength = FeatureLength,
            Train = train,
            Validation = validation,
            Classes = Dataset.Classes,
            Head = Head,
            TrainSuffix = Freeze is not null,
            Recipe = Options.FineTuning,
            Seed = Options.Seed,
            Threads = Math.Max(1, Options.Threads ?? Environment.ProcessorCount),
            WarmStart = warm,
            KeepEpoch = keep,
            KeepHeadEpoch = keepHeadEpoch,
            Resume = Options.Resume,
        };
        if (checkpointName is null)
            return job;
        var fingerprint = Fingerprint(job);
        var folder = Options.CheckpointFolder ?? Path.Combine(Options.Featurizer.CacheFolder, "checkpoints");
        var path = Path.Combine(folder, $"{checkpointName}-{fingerprint[..24]}.ckpt");
        Checkpointing.RemoveOld(folder, path);
        _checkpoints.Add(path);
        return job with { CheckpointPath = path, Fingerprint = fingerprint };
    }

    /// <summary>What makes a TorchSharp run what it is: a checkpoint of another run is never resumed.</summary>
    private string Fingerprint(TorchTrainingJob job)
    {
        var text = new StringBuilder()
            .Append(job.Seed).Append('|').Append(job.Threads).Append('|').Append(job.Recipe).Append('|').Append(job.Head).Append('|').Append(job.TrainSuffix)
            .Append('|').Append(Pipeline.CutKey).Append('|').Append(job.Boundary).Append('|').Append(job.FeatureLength)
            .Append('|').AppendJoin(",", job.Classes).Append('|').AppendJoin(",", TrainPlan.Views.Select(v => v.Key))
            .Append('|').Append(job.WarmStart is null ? "cold" : WeightsHash(job.WarmStart)).Append('|').Append(job.KeepEpoch).Append('|').Append(job.KeepHeadEpoch)
            .Append('|').AppendJoin(";", job.Train.Images.Select(i => $"{i.ContentHash}:{i.Image.Label}:{i.Views.Count}"))
            .Append('|').AppendJoin(";", job.Validation.Images.Select(i => $"{i.ContentHash}:{i.Image.Label}"));
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }

    private static string WeightsHash(HeadWeights w)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var row in w.OutputWeights)
            hash.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(row.AsSpan()));
        hash.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(w.OutputBiases.AsSpan()));
        if (w.HiddenWeights is not null)
            hash.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(w.HiddenWeights.AsSpan()));
        if (w.HiddenBiases is not null)
            hash.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(w.HiddenBiases.AsSpan()));
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    public ModelMetadata Metadata(FittedHead final, IReadOnlyList<ClassificationReport> reports, int imagesInModel, SplitPlan split, bool refit, ModelMetadata? previous)
    {
        var spec = Preset.Preprocessing;
        var options = new Dictionary<string, string>
        {
            ["validationFraction"] = Options.Data.ValidationFraction.ToString(CultureInfo.InvariantCulture),
            ["batchSize"] = Options.Featurizer.BatchSize.ToString(CultureInfo.InvariantCulture),
            ["precision"] = Options.Precision.ToString().ToLowerInvariant(),
            ["refit"] = Options.Refit.ToString(),
        };
        if (Options.TestTimeFlip)
            options["testTimeFlip"] = "True";
        foreach (var (k, v) in final.Options())
            options[k] = v;
        if (previous is not null)
            options["continuedFrom"] = $"{previous.Mode} model of {previous.CreatedUtc:u} trained on {previous.Training.Data}";
        return new ModelMetadata
        {
            Mode = Freeze is not null ? "fine-tune" : "feature-extraction",
            ConvBase = new ModelMetadata.ConvBaseInfo(Preset.Name, Preset.Description, spec.Describe(), Preset.Pooling.ToString(), FeatureLength, Source.BaseSha256)
            {
                Spec = ConvBaseSpecFile.From(Preset),
            },
            Classes = Dataset.Classes,
            Head = final.HeadInfo(),
            Training = new ModelMetadata.TrainingInfo(Dataset.Source, Dataset.SplitOrigin, Options.Seed, TrainPlan.Mirror || (TrainPlan.Crops > 0 && TrainPlan.CropFlip),
                new Dictionary<string, int> { ["train"] = Dataset.Train.Count, ["validation"] = Dataset.Validation.Count, ["test"] = Dataset.Test.Count },
                Dataset.Skipped.Count, options)
            {
                ImagesInModel = imagesInModel,
                HeldOut = split.HeldOut.Count,
                Refit = refit,
            },
            FineTune = final.FineTuneInfo(),
            Metrics = reports.Select(r => new ModelMetadata.MetricsSummary(r.Split, r.Count, r.MicroAccuracy, r.MacroAccuracy, r.LogLoss)
            {
                CalibrationError = r.ExpectedCalibrationError,
                CalibrationErrorBefore = r.Uncalibrated?.ExpectedCalibrationError,
                UnknownRate = r.UnknownRate,
            }).ToList(),
        };
    }

    public void Dispose() => Pipeline.Dispose();
}

/// <summary>
/// Which images choose (the L2 weight, the epoch) and which fit: the validation split the user gave, or a seeded
/// stratified share the trainer holds out of the training images, which are then all fit again (<see cref="Refit"/>).
/// The L-BFGS head chooses its L2 by cross-validation, so it holds out only where nothing else would give an estimate
/// (no validation and no test split).
/// </summary>
internal sealed record SplitPlan(IReadOnlyList<LabeledImage> HeldOut, bool Refit)
{
    public bool MadeByTrainer => HeldOut.Count > 0;

    /// <summary>The split the choice was made on, as reports name it.</summary>
    /// <param name="refit">The figures are of the first fit, before a refit on every image.</param>
    /// <param name="also">What else the split chose, in words ("it chose the mode"); null for nothing more.</param>
    /// <param name="heldName">The word for the share the trainer held out.</param>
    public string NameFor(bool refit, string? also = null, string heldName = "validation")
    {
        var notes = new List<string>();
        if (MadeByTrainer && heldName == "validation")
            notes.Add("held out by the trainer");
        if (also is not null)
            notes.Add(also);
        if (MadeByTrainer && refit)
            notes.Add("estimate before the refit");
        var name = MadeByTrainer && heldName != "validation" ? $"{heldName} training images" : "validation";
        return notes.Count == 0 ? name : $"{name} ({string.Join("; ", notes)})";
    }

    /// <param name="dataset">The data, as read.</param>
    /// <param name="options">The run's options (the held-out fraction, the seed, refit).</param>
    /// <param name="head">The head: only a TorchSharp head needs a share to choose its epoch on.</param>
    /// <param name="progress">Where the split is said.</param>
    /// <param name="alwaysHoldOut">Hold out a share for every head (Mode = Auto scores its candidates on it), not only where something is chosen on it.</param>
    public static SplitPlan For(ImageDataset dataset, ImageClassifierTrainerOptions options, HeadKind head, IProgress<ProgressEvent>? progress, bool alwaysHoldOut = false)
    {
        if (dataset.Validation.Count > 0)
            return new SplitPlan([], false);
        bool needsChoice = head != HeadKind.LbfgsSoftmax || alwaysHoldOut;
        if (!needsChoice && dataset.Test.Count > 0)
            return new SplitPlan([], false);
        var (_, held) = StratifiedSplitter.Split(dataset.Train, options.Data.ValidationFraction, options.Seed, minKept: 2);
        if (held.Count == 0)
            return new SplitPlan([], false);
        string purpose = alwaysHoldOut ? "to choose the mode" : needsChoice ? "to choose the epoch" : "to estimate accuracy";
        progress.Note(options.Refit
            ? FormattableString.Invariant($"no validation split: {held.Count} of {dataset.Train.Count} training images ({options.Data.ValidationFraction:P0} per class) held out {purpose}; the final model is then fit on all {dataset.Train.Count}")
            : FormattableString.Invariant($"no validation split: {held.Count} of {dataset.Train.Count} training images ({options.Data.ValidationFraction:P0} per class) held out {purpose}; no refit (Refit = false): the model never sees them"));
        return new SplitPlan(held, options.Refit);
    }

    /// <summary>The images to fit first, and those to choose on: the held-out share of the training images, or the validation split.</summary>
    public (ViewSet Fit, ViewSet ChooseOn) Apply(ViewSet train, ViewSet validation)
    {
        if (!MadeByTrainer)
            return (train, validation);
        var held = HeldOut.Select(i => i.Path).ToHashSet(StringComparer.Ordinal);
        return (train.Subset(i => !held.Contains(i.Image.Path)), train.Subset(i => held.Contains(i.Image.Path)));
    }
}

/// <summary>
/// Checkpoint files of finished runs are removed once their model is on disk; those of runs never finished or saved
/// go after <see cref="KeptFor"/>.
/// </summary>
internal static class Checkpointing
{
    public static readonly TimeSpan KeptFor = TimeSpan.FromDays(7);

    public static void RemoveOld(string folder, string except)
    {
        try
        {
            if (!Directory.Exists(folder))
                return;
            foreach (var file in new DirectoryInfo(folder).EnumerateFiles("*.ckpt"))
                if (file.FullName != Path.GetFullPath(except) && DateTime.UtcNow - file.LastWriteTimeUtc > KeptFor)
                    IO.TempFiles.TryDelete(file.FullName);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    public static void Remove(IEnumerable<string> paths)
    {
        foreach (var path in paths)
        {
            IO.TempFiles.TryDelete(path);
            try
            {
                var dir = Path.GetDirectoryName(path);
                if (dir is not null && Directory.Exists(dir) && !Directory.EnumerateFileSystemEntries(dir).Any())
                    Directory.Delete(dir);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }
    }
}
