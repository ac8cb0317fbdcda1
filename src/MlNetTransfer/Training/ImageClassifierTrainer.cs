using MlNetTransfer.Backbones;
using MlNetTransfer.Data;
using MlNetTransfer.Featurization;
using MlNetTransfer.Inference;
using MlNetTransfer.Onnx;
using MlNetTransfer.Progress;
using MlNetTransfer.Training.Backends;
using Onnx;

namespace MlNetTransfer.Training;

/// <summary>
/// The one trainer (fastai's Learner, ML.NET's estimator): labelled images in, a stock ML.NET model zip out, for every
/// mode and head. It reads the data, runs the images through the conv base once (or its frozen part, when
/// fine-tuning) in one pipeline whose results are cached per image, holds out a share of the training images when the
/// data has no validation split, trains the head (ML.NET's L-BFGS, or TorchSharp with the package
/// MlNetTransfer.TorchSharp) and, when fine-tuning, the top block(s), fits again on every labelled image with what
/// the held-out share chose, evaluates, and assembles a model of stock ML.NET transforms. Also continued training of a
/// saved model (<see cref="Retrain(string, string, IProgress{ProgressEvent}?, CancellationToken)"/>), the learning-rate
/// range test (<see cref="FindLearningRate(string, LearningRateRange?, IProgress{ProgressEvent}?, CancellationToken)"/>)
/// and sharded featurization for batch schedulers (<see cref="FeaturizeShard"/>).
/// </summary>
public sealed class ImageClassifierTrainer(ImageClassifierTrainerOptions? options = null)
{
    private readonly ImageClassifierTrainerOptions _options = options ?? new ImageClassifierTrainerOptions();

    public ImageClassifierTrainerOptions Options => _options;

    /// <summary>Trains on a data folder (<c>root/&lt;label&gt;/*.jpg</c>, optionally under <c>train/</c>, <c>val/</c>, <c>test/</c>) or a CSV/TSV manifest.</summary>
    public TrainedImageClassifier Train(string data, IProgress<ProgressEvent>? progress = null, CancellationToken cancellationToken = default)
    {
        var backend = Prepare();
        return Train(ImageDatasetLoader.Load(data, _options.Data), backend, progress, cancellationToken);
    }

    /// <inheritdoc cref="Train(string, IProgress{ProgressEvent}?, CancellationToken)"/>
    public TrainedImageClassifier Train(ImageDataset dataset, IProgress<ProgressEvent>? progress = null, CancellationToken cancellationToken = default) =>
        Train(dataset, Prepare(), progress, cancellationToken);

    /// <summary>Before any work: the options hold, and the backend they need is there (Mode = Auto goes on without it, trying only the L-BFGS head).</summary>
    private (ITorchSharpBackend? Backend, string? Missing) Prepare()
    {
        _options.Validate(TrainerTask.Train);
        if (!_options.TrainsInTorchSharp)
            return (null, null);
        return _options.Mode != TrainingMode.Auto
            ? (TrainingBackends.TorchSharp(Describe(_options.Mode, _options.EffectiveHead)), null)
            : TrainingBackends.TryTorchSharp("Mode = Auto");
    }

    private TrainedImageClassifier Train(ImageDataset dataset, (ITorchSharpBackend? Backend, string? Missing) prepared, IProgress<ProgressEvent>? progress,
        CancellationToken cancellationToken)
    {
        var backend = prepared.Backend;
        var head = _options.EffectiveHead;
        var exact = new List<DataFinding>();
        dataset = WithoutDuplicates(dataset, _options, progress, exact);
        progress?.Report(new DatasetLoaded(dataset));
        // Feature extraction checks on the pooled views it computes anyway; the other modes have none of every image, so first.
        bool checkInRun = _options.Mode == TrainingMode.FeatureExtraction;
        DataCheckReport? checks = null;
        if (!checkInRun)
            (dataset, checks) = DataChecks.Run(_options, dataset, exact, progress, cancellationToken);
        var graph = PrepareGraph(_options.ConvBase, dataset, progress);
        var source = BaseSource.Of(graph, graph.BaseSha256 ?? FeaturizerGraphCache.FileHash(graph.Preset.RequireModelFile()));
        var trained = _options.Mode == TrainingMode.Auto
            ? new ModeSearch(this, _options, backend, prepared.Missing).Run(dataset, source, progress, cancellationToken)
            : Run(dataset, source, _options, head, backend, warm: null, previous: null, progress, cancellationToken, checkInRun ? exact : null);
        trained.DataChecks ??= checks;
        return trained;
    }

    /// <summary>
    /// The data checks alone, as <see cref="Train(string, IProgress{ProgressEvent}?, CancellationToken)"/> runs them before
    /// training (the console's <c>validate --labels</c>): exact and near-duplicates within a class, across classes and
    /// across splits, and likely label errors among the training images from out-of-fold probabilities of the L-BFGS
    /// head's cross-validation on the pooled features. Nothing is trained or written but the per-image cache.
    /// </summary>
    public DataCheckReport CheckData(string data, IProgress<ProgressEvent>? progress = null, CancellationToken cancellationToken = default)
    {
        _options.Validate(TrainerTask.Train);
        return CheckData(ImageDatasetLoader.Load(data, _options.Data), progress, cancellationToken);
    }

    /// <inheritdoc cref="CheckData(string, IProgress{ProgressEvent}?, CancellationToken)"/>
    public DataCheckReport CheckData(ImageDataset dataset, IProgress<ProgressEvent>? progress = null, CancellationToken cancellationToken = default)
    {
        _options.Validate(TrainerTask.Train);
        var exact = new List<DataFinding>();
        dataset = WithoutDuplicates(dataset, _options, progress, exact);
        progress?.Report(new DatasetLoaded(dataset));
        return DataChecks.Run(_options, dataset, exact, progress, cancellationToken).Report;
    }

    /// <summary>
    /// Continues training a model this tool saved (fine-tuned, or with a TorchSharp head) on new or more images of the same
    /// classes, from its tuned weights: a fine-tuned model's block and head train on (its head phase is not repeated),
    /// a TorchSharp head on the frozen base trains its head epochs again from where it was. The conv base, mode, head and unfrozen blocks are the
    /// model's: <see cref="ImageClassifierTrainerOptions.ConvBase"/>, <c>Mode</c>, <c>Head</c>, <c>FineTuning.Unfreeze</c>
    /// and <c>Precision</c> must be left at their defaults or equal the model's; the rest of the recipe is this trainer's.
    /// </summary>
    public TrainedImageClassifier Retrain(string modelZip, string data, IProgress<ProgressEvent>? progress = null, CancellationToken cancellationToken = default)
    {
        // The model and the options first: no data is read for a continuation that cannot be made.
        var continued = Continuation(modelZip);
        return Retrain(continued, ImageDatasetLoader.Load(data, _options.Data), progress, cancellationToken);
    }

    /// <inheritdoc cref="Retrain(string, string, IProgress{ProgressEvent}?, CancellationToken)"/>
    public TrainedImageClassifier Retrain(string modelZip, ImageDataset dataset, IProgress<ProgressEvent>? progress = null, CancellationToken cancellationToken = default) =>
        Retrain(Continuation(modelZip), dataset, progress, cancellationToken);

    /// <summary>What continued training of a model starts from, and the options it runs with (checked against the model).</summary>
    private sealed record ContinuedModel(string Zip, ModelMetadata Metadata, HeadKind Head, ImageClassifierTrainerOptions Options, ITorchSharpBackend Backend);

    private ContinuedModel Continuation(string modelZip)
    {
        // Only the structure and metadata here (cheap): the options are checked before anything is loaded or read.
        var metadata = ModelArchive.ReadMetadata(modelZip)
                       ?? throw new ModelLoadException($"'{modelZip}' was not made by MlNetTransfer: it has no {ModelMetadata.EntryName}, so it cannot be trained further.");
        var head = ModelMetadata.HeadKinds.Parse(metadata.Head.Kind)
                   ?? throw new ModelLoadException($"'{modelZip}': its head kind '{metadata.Head.Kind}' is not one this version knows.");
        if (head == HeadKind.LbfgsSoftmax)
            throw new ModelLoadException($"'{modelZip}' has an ML.NET L-BFGS head (feature extraction): train it again with Train, or train a TorchSharp head or fine-tune (Head = TorchSharpSoftmax/TorchSharpMlp, Mode = FineTuning) to continue it later.");
        var mode = metadata.Mode == "fine-tune" ? TrainingMode.FineTuning : TrainingMode.FeatureExtraction;
        var unfreeze = metadata.FineTune?.Unfreeze is { Length: > 0 } u ? u : new FineTuningOptions().Unfreeze;
        var defaults = new ImageClassifierTrainerOptions();
        void Same(bool sameOrDefault, string option, string theirs)
        {
            if (!sameOrDefault)
                throw new TrainingOptionsException(option, $"{option} does nothing for continued training (Retrain): the model's is {theirs}, and it is kept; leave it at its default.");
        }
        Same(_options.Mode == defaults.Mode || _options.Mode == mode, "Mode", mode.ToString());
        Same(_options.Head is null || _options.Head == head, "Head", head.ToString());
        Same(_options.ConvBase.Name == defaults.ConvBase.Name || _options.ConvBase.Name == metadata.ConvBase.Name, "ConvBase", metadata.ConvBase.Name);
        Same(_options.FineTuning.Unfreeze == defaults.FineTuning.Unfreeze || _options.FineTuning.Unfreeze == unfreeze, "FineTuning.Unfreeze", unfreeze);
        bool flip = metadata.Training.Options.TryGetValue("testTimeFlip", out var f) && f == "True";
        Same(_options.TestTimeFlip == defaults.TestTimeFlip || _options.TestTimeFlip == flip, "TestTimeFlip", flip.ToString());
        var effective = _options with { Mode = mode, Head = head, TestTimeFlip = flip, FineTuning = _options.FineTuning with { Unfreeze = defaults.FineTuning.Unfreeze } };
        effective.Validate(TrainerTask.Retrain, mode);
        effective = effective with { FineTuning = effective.FineTuning with { Unfreeze = unfreeze } };
        return new ContinuedModel(modelZip, metadata, head, effective, TrainingBackends.TorchSharp("Continued training"));
    }

    private TrainedImageClassifier Retrain(ContinuedModel continued, ImageDataset dataset, IProgress<ProgressEvent>? progress, CancellationToken cancellationToken)
    {
        var (modelZip, metadata, head, effective, backend) = continued;
        if (!metadata.Classes.SequenceEqual(dataset.Classes))
            throw new DatasetException($"{dataset.Source}: classes ({string.Join(", ", dataset.Classes)}) differ from the model's ({string.Join(", ", metadata.Classes)}); continued training needs the same classes.");

        var preset = (metadata.ConvBase.Spec ?? throw new ModelLoadException($"'{modelZip}' has no conv-base spec in its metadata (made by an older version)."))
            .ApplyTo(new ConvBasePreset { Name = metadata.ConvBase.Name, Description = metadata.ConvBase.Description });
        HeadWeights warm;
        ModelProto composed;
        // The one validated path (as predict and export): the ONNX read is the one ML.NET loaded, the classes the metadata's.
        using (var package = ModelArchive.Open(modelZip, new Microsoft.ML.MLContext(_options.Seed)))
        {
            if (!package.RequireMetadata("it cannot be trained further").Classes.SequenceEqual(metadata.Classes))
                throw new ModelLoadException($"'{modelZip}' changed while it was read.");
            (composed, var hiddenWeights, var hiddenBiases, _) = TunedGraphWriter.SplitHead(NoveltyGraph.Detach(FlipAveraging.Unwrap(ModelProto.Parser.ParseFrom(package.ReadOnnx()))));
            var (weights, biases) = MaxEntHead.Read(package.Model) ?? throw new ModelLoadException($"'{modelZip}' has no maximum-entropy head to continue from.");
            // The saved head carries its temperature (W / T): training goes on from the head as it trained.
            double t = metadata.Calibration?.Temperature ?? 1;
            warm = new HeadWeights(MaxEntHead.Scale(weights, 1 / t), MaxEntHead.Scale(biases, 1 / t), hiddenWeights, hiddenBiases);
        }
        dataset = WithoutDuplicates(dataset, effective, progress);
        progress?.Report(new DatasetLoaded(dataset));
        progress.Note($"continuing from {modelZip} ({metadata.Mode}, {metadata.Classes.Count} classes)");
        var source = new BaseSource(preset, () => composed, null, metadata.ConvBase.FeatureLength, metadata.ConvBase.ModelSha256);
        var lineage = new ModelMetadata.LineageInfo(modelZip, FeaturizerGraphCache.FileHash(modelZip), metadata.CreatedUtc, metadata.Training.Data,
            metadata.Training.ImagesPerSplit, (metadata.Lineage?.Generation ?? 1) + 1);
        return Run(dataset, source, effective, head, backend, warm, metadata, progress, cancellationToken, annotate: m => m with { Lineage = lineage });
    }

    /// <summary>
    /// fastai's learning-rate range test on these images with this recipe: the TorchSharp head on the frozen base, or,
    /// with <see cref="TrainingMode.FineTuning"/>, the unfrozen block(s) + head after the head phase. Suggests a rate.
    /// </summary>
    public LearningRateSweep FindLearningRate(string data, LearningRateRange? range = null, IProgress<ProgressEvent>? progress = null,
        CancellationToken cancellationToken = default)
    {
        var backend = PrepareRangeTest(range);
        return FindLearningRate(ImageDatasetLoader.Load(data, _options.Data), range, backend, progress, cancellationToken);
    }

    /// <inheritdoc cref="FindLearningRate(string, LearningRateRange?, IProgress{ProgressEvent}?, CancellationToken)"/>
    public LearningRateSweep FindLearningRate(ImageDataset dataset, LearningRateRange? range = null, IProgress<ProgressEvent>? progress = null,
        CancellationToken cancellationToken = default) =>
        FindLearningRate(dataset, range, PrepareRangeTest(range), progress, cancellationToken);

    /// <summary>
    /// The learning curve on these images: accuracy against training images per class for a CNN trained from scratch,
    /// feature extraction and fine-tuning (<paramref name="curve"/>), on seeded subsamples, scored on images no
    /// subsample trained on. The conv base, seed, threads, cache and image checks are this trainer's; each method runs
    /// with its defaults.
    /// </summary>
    public LearningCurveResult LearningCurve(string data, LearningCurveOptions? curve = null, IProgress<ProgressEvent>? progress = null,
        CancellationToken cancellationToken = default)
    {
        curve ??= new LearningCurveOptions();
        curve.Validate();
        _options.Validate(TrainerTask.Train);
        if (_options.Mode != TrainingMode.FeatureExtraction || _options.Head is not null)
            throw new TrainingOptionsException("Mode", "the learning curve runs each method with its own mode and head: leave Mode and Head at their defaults.");
        var (backend, missing) = curve.Methods.Any(m => m != LearningCurveMethod.FeatureExtraction)
            ? TrainingBackends.TryTorchSharp("The learning curve's fine-tuning and from-scratch points")
            : (null, null);
        var dataset = WithoutDuplicates(ImageDatasetLoader.Load(data, _options.Data), _options, progress);
        return new LearningCurve(_options, curve, backend, missing).Run(dataset, progress, cancellationToken);
    }

    /// <summary>One image twice, in two splits or under two labels: used once, never in two splits, and said; then trainable.</summary>
    private static ImageDataset WithoutDuplicates(ImageDataset dataset, ImageClassifierTrainerOptions options, IProgress<ProgressEvent>? progress,
        List<DataFinding>? findings = null)
    {
        (dataset, var duplicates) = ExactDuplicates.Remove(dataset, options.ImageChecks, findings);
        foreach (var duplicate in duplicates)
            progress.Note(duplicate, warning: true);
        dataset.EnsureTrainable(options.Data.MinImagesPerClass);
        return dataset;
    }

    private ITorchSharpBackend PrepareRangeTest(LearningRateRange? range)
    {
        _options.Validate(TrainerTask.FindLearningRate);
        (range ?? new LearningRateRange()).Validate();
        return TrainingBackends.TorchSharp("The learning-rate range test");
    }

    private LearningRateSweep FindLearningRate(ImageDataset dataset, LearningRateRange? range, ITorchSharpBackend backend, IProgress<ProgressEvent>? progress,
        CancellationToken cancellationToken)
    {
        range ??= new LearningRateRange();
        // The range test is for TorchSharp heads: with the mode's default head unset, that is the softmax layer.
        var options = _options with { Head = _options.Head ?? HeadKind.TorchSharpSoftmax };
        dataset = WithoutDuplicates(dataset, options, progress);
        var graph = PrepareGraph(options.ConvBase, dataset, progress);
        using var run = TrainingRun.Start(options, dataset, BaseSource.Of(graph), options.EffectiveHead, progress, cancellationToken);
        var train = run.Featurize(run.Dataset.Train, run.TrainPlan, "featurize train", progress, cancellationToken);
        run.ReportSkipped(train, progress);
        run.Forget(train.Unreadable);
        var job = run.Job(train, ViewSet.Empty(train.Shape), warm: null, keep: null, checkpointName: null);
        return backend.FindLearningRate(job, range, progress, cancellationToken);
    }

    /// <summary>
    /// Runs the conv base over shard <paramref name="index"/> (0-based) of <paramref name="count"/> of a data set (every
    /// count-th image in path order, the same on every machine) and writes exactly what <see cref="Train(string, IProgress{ProgressEvent}?, CancellationToken)"/>
    /// with these options would compute for those images to <paramref name="outputPath"/> (and to the local cache).
    /// <see cref="FeaturizerOptions.Shards"/> of a later run imports them. Returns the images written and those skipped.
    /// </summary>
    public (int Written, IReadOnlyList<SkippedFile> Skipped) FeaturizeShard(string data, int index, int count, string outputPath,
        IProgress<ProgressEvent>? progress = null, CancellationToken cancellationToken = default)
    {
        _options.Validate(TrainerTask.Train);
        if (_options.Mode == TrainingMode.Auto)
            throw new TrainingOptionsException("Mode", "Mode = Auto cuts the graph once per candidate: make the shards of each fixed mode (and head, and blocks) a run will use.");
        var dataset = ImageDatasetLoader.Load(data, _options.Data);
        var selected = FeatureShard.Select(dataset.All, data, index, count);
        var graph = PrepareGraph(_options.ConvBase, dataset, progress);
        using var run = TrainingRun.Start(_options, dataset, BaseSource.Of(graph), _options.EffectiveHead, progress, cancellationToken);
        var training = dataset.Train.ToHashSet();
        // Training images get their augmented views (the trainer's own held-out share is fit again, so it has them too),
        // validation and test images the plain view, as a training run computes them.
        var train = run.Featurize(selected.Where(training.Contains).ToList(), run.TrainPlan, "featurize train", progress, cancellationToken);
        var heldOut = run.Featurize(selected.Where(i => !training.Contains(i)).ToList(), ViewPlan.PlainOnly, "featurize held-out", progress, cancellationToken);
        var records = new List<ShardRecord>();
        // A file used despite a warning is left out, as the cache leaves it out: a run that imports the shard may be stricter.
        var warned = train.Warnings.Concat(heldOut.Warnings).ToList();
        var leftOut = warned.Select(w => w.Path).ToHashSet(StringComparer.Ordinal);
        foreach (var (set, plan) in new[] { (train, run.TrainPlan), (heldOut, ViewPlan.PlainOnly) })
            records.AddRange(set.Images.Where(i => !leftOut.Contains(i.Image.Path)).Select(i => new ShardRecord(i.ContentHash, FeatureShard.Relative(data, i.Image.Path), i.Image.Label,
                i.Views.Select((v, k) => (plan.Views[k].Key, v)).ToList())));
        new FeatureShard
        {
            CutKey = run.Pipeline.CutKey,
            ConvBase = graph.Preset.Name,
            Tensor = run.Prefix.Tensor,
            Shape = train.Shape,
            Index = index,
            Count = count,
            Records = records.OrderBy(r => r.RelativePath, StringComparer.Ordinal).ToList(),
        }.Save(outputPath);
        return (records.Count, train.Unreadable.Concat(heldOut.Unreadable)
            .Concat(warned.Select(w => new SkippedFile(w.Path, $"used despite: {w.Reason}; not written to the shard"))).ToList());
    }

    private TrainedImageClassifier Run(ImageDataset dataset, BaseSource source, ImageClassifierTrainerOptions options, HeadKind head, ITorchSharpBackend? backend,
        HeadWeights? warm, ModelMetadata? previous, IProgress<ProgressEvent>? progress, CancellationToken cancellationToken, IReadOnlyList<DataFinding>? checkData = null,
        Func<ModelMetadata, ModelMetadata>? annotate = null)
    {
        using var candidate = FitFirst(dataset, source, options, head, backend, warm, CandidateShape.Fixed, progress, cancellationToken, checkData);
        return Complete(candidate, previous, progress, cancellationToken, annotate);
    }

    /// <summary>
    /// A run up to its first fit: featurized, the split made, the head (and block) fit on the images it fits first and
    /// scored on those it chooses on. <see cref="Complete"/> refits, evaluates and assembles it; Mode = Auto fits several
    /// and completes one. With <c>checkData</c> (the exact-copy findings; fixed feature extraction), the data checks run
    /// on the run's own pooled views: near copies before the split, the labels after the fit.
    /// </summary>
    internal FirstFit FitFirst(ImageDataset dataset, BaseSource source, ImageClassifierTrainerOptions options, HeadKind head, ITorchSharpBackend? backend,
        HeadWeights? warm, CandidateShape shape, IProgress<ProgressEvent>? progress, CancellationToken cancellationToken, IReadOnlyList<DataFinding>? checkData = null)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var run = TrainingRun.Start(options, dataset, source, head, progress, cancellationToken);
        try
        {
            var train = run.Featurize(run.Dataset.Train, run.TrainPlan, "featurize train", progress, cancellationToken);
            var validation = run.Featurize(run.Dataset.Validation, ViewPlan.PlainOnly, "featurize validation", progress, cancellationToken);
            var test = run.Featurize(run.Dataset.Test, ViewPlan.PlainOnly, "featurize test", progress, cancellationToken);
            run.ReportSkipped(train.Concat(validation).Concat(test), progress);
            run.Forget(train.Unreadable.Concat(validation.Unreadable).Concat(test.Unreadable).ToList());
            run.PruneCache();
            List<DataFinding>? near = null;
            int imagesChecked = train.Images.Count + validation.Images.Count + test.Images.Count;
            if (checkData is not null)
                (train, validation, test, near) = DataChecks.InRun(run, train, validation, test);
            var featurized = clock.Elapsed;

            // The share held out by the trainer (no validation split given) chooses; the user's validation split otherwise.
            // Made from the images that read, so a broken file neither sits in it nor empties a class of the rest.
            var split = SplitPlan.For(run.Dataset, options, head, progress, shape.AlwaysHoldOut);
            var (fit, chooseOn) = split.Apply(train, validation);
            IHeadFitter fitter = head == HeadKind.LbfgsSoftmax
                ? new LbfgsHeadFitter(run, options.Lbfgs)
                : new TorchHeadFitter(run, backend!, warm);
            var first = fitter.Fit(fit, chooseOn.PlainOnly(), chosen: null, "main", progress, cancellationToken);
            var scored = chooseOn.Images.Count == 0 ? null : first.Probabilities(chooseOn);
            // The labels are checked after the fit: the L-BFGS head's cross-validation gives the out-of-fold probabilities where it covered every image.
            var checks = checkData is null ? null : DataChecks.Findings(run, options, run.Dataset.Source, checkData, near!, imagesChecked, train, first.OutOfFold, progress, cancellationToken,
                skipLabels: first.Stopped || cancellationToken.IsCancellationRequested ? "training was stopped by the user" : null);
            return new FirstFit(run, fitter, first, split, train, chooseOn, test, scored, shape, fit.Images.Count)
            {
                FeaturizeTime = featurized, FitTime = clock.Elapsed - featurized, DataChecks = checks,
            };
        }
        catch
        {
            run.Dispose();
            throw;
        }
    }

    /// <summary>Refits a first fit on every training image (when the trainer held out a share), evaluates it and assembles the model.</summary>
    internal TrainedImageClassifier Complete(FirstFit candidate, ModelMetadata? previous, IProgress<ProgressEvent>? progress, CancellationToken cancellationToken,
        Func<ModelMetadata, ModelMetadata>? annotate = null)
    {
        var (run, fitter, first, split, train, chooseOn, test, shape) = (candidate.Run, candidate.Fitter, candidate.First, candidate.Split, candidate.Train,
            candidate.ChooseOn, candidate.Test, candidate.Shape);
        FittedHead? final = null;
        try
        {
            // The held-out estimate is the first fit's (its predictions were taken before a refit lets that model go).
            bool estimateOfSaved = !(split.Refit && !first.Stopped);
            bool refitStopped = false;
            if (split.Refit && !first.Stopped)
                (final, refitStopped) = Refit(fitter, first, train, split, shape.RechooseL2 && run.Head == HeadKind.LbfgsSoftmax, progress, cancellationToken);
            bool refit = final is not null;
            if (refitStopped)
                estimateOfSaved = true;
            var estimateName = candidate.Scored is null ? null : split.NameFor(refit: !estimateOfSaved, shape.ChoiceWords, shape.HeldName);
            final ??= first;
            candidate.Release(final);
            var calibration = HeadCalibration.Fit(final, candidate, estimateName, progress);
            var novelty = HeadNovelty.Fit(final, run, train, progress);
            // A false-alarm rate only on images the novelty score was not fitted on (the user's splits, not the trainer's held-out share).
            double? Unknown(ViewSet images) => novelty is { } n ? HeadNovelty.UnknownRate(final, n.Scorer, n.Info.Threshold, images) : null;

            var reports = new List<ClassificationReportEntry>();
            if (test.Images.Count > 0)
                reports.Add(new(CalibratedReport(shape.TestName, test, final.RawProbabilities(test), run.Dataset.Classes, calibration: calibration) with { UnknownRate = Unknown(test) },
                    Primary: run.Dataset.Validation.Count == 0 || shape.TestFirst));
            if (estimateName is not null)
                reports.Add(new(CalibratedReport(estimateName, chooseOn, candidate.Scored!, run.Dataset.Classes, estimateOfSaved, calibration, calibratedOnThese: calibration?.FittedOnSplit is not null)
                        with { UnknownRate = split.MadeByTrainer ? null : Unknown(chooseOn) },
                    Primary: (run.Dataset.Validation.Count > 0 && !shape.TestFirst) || test.Images.Count == 0));
            var ordered = reports.OrderByDescending(r => r.Primary).Select(r => r.Report).ToList();
            var assembled = final.Assemble();
            var metadata = run.Metadata(final, ordered, refit ? train.Images.Count : candidate.FitCount, split, refit, previous) with { Calibration = calibration, Novelty = novelty?.Info };
            if (annotate is not null)
                metadata = annotate(metadata);
            var checkpoints = run.Checkpoints.ToList();
            bool stopped = final.Stopped || refitStopped;
            // What the zip needs is in it now; the trained modules are no longer needed.
            final.Dispose();
            return new TrainedImageClassifier(run.Ml, assembled.Model, assembled.InputSchema, run.Dataset, ordered, metadata, release: assembled.Release,
                afterSave: stopped ? null : () => Checkpointing.Remove(checkpoints)) { DataChecks = candidate.DataChecks };
        }
        catch
        {
            final?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Fits again on every training image with what the held-out share chose. A refit stopped by the user is dropped
    /// (Stopped = true): the first fit, which finished, is what is saved.
    /// </summary>
    private static (FittedHead? Refit, bool Stopped) Refit(IHeadFitter fitter, FittedHead first, ViewSet train, SplitPlan split, bool rechooseL2,
        IProgress<ProgressEvent>? progress, CancellationToken cancellationToken)
    {
        progress.Note(rechooseL2
            ? $"refitting on all {train.Images.Count} training images, the L2 weight chosen again by cross-validation on all of them"
            : $"refitting on all {train.Images.Count} training images with {first.Choice} (chosen on the {split.HeldOut.Count} held-out images)");
        FittedHead? refit = null;
        try
        {
            refit = fitter.Fit(train, ViewSet.Empty(train.Shape), rechooseL2 ? null : first, "refit", progress, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        if (refit is not null && !refit.Stopped)
            return (refit, false);
        refit?.Dispose();
        progress.Note("stopped during the refit: the model fit without the held-out share, which had finished, is saved instead", warning: true);
        return (null, true);
    }

    private sealed record ClassificationReportEntry(Evaluation.ClassificationReport Report, bool Primary);

    private FeaturizerGraphFile PrepareGraph(ConvBasePreset preset, ImageDataset dataset, IProgress<ProgressEvent>? progress)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        progress?.Report(new StageStarted("prepare", $"Preparing conv base {preset.Name}", 0));
        var root = _options.Featurizer.CacheRoot;
        var graph = FeaturizerGraphCache.GetOrBuild(preset, root, progress);
        progress?.Report(new StageFinished("prepare", 0, clock.Elapsed));
        if (_options.Precision == ConvBasePrecision.Int8)
            graph = Int8ConvBase.GetOrBuild(graph, dataset.Train, _options.Seed, _options.Int8, _options.ImageChecks, root, progress);
        return graph;
    }

    internal static Evaluation.ClassificationReport Report(string split, ViewSet images, float[][] probabilities, IReadOnlyList<string> classes, bool ofSavedModel = true) =>
        Evaluation.ClassificationReport.Create(split, classes, images.Images.Select((image, i) => (image.Image.Path, image.Image.Label, probabilities[i])).ToList(), ofSavedModel);

    /// <summary>The report of the calibrated head (the saved model's probabilities), holding the one before the temperature; the plain report when not calibrated.</summary>
    private static Evaluation.ClassificationReport CalibratedReport(string split, ViewSet images, float[][] raw, IReadOnlyList<string> classes, bool ofSavedModel = true,
        ModelMetadata.CalibrationInfo? calibration = null, bool calibratedOnThese = false)
    {
        var before = Report(split, images, raw, classes, ofSavedModel);
        if (calibration is null)
            return before;
        var after = Report(split, images, raw.Select(p => Evaluation.TemperatureScaling.Apply(p, calibration.Temperature)).ToArray(), classes, ofSavedModel);
        return after with { Uncalibrated = before, CalibratedOnThese = calibratedOnThese };
    }

    internal static string Describe(TrainingMode mode, HeadKind head) =>
        mode == TrainingMode.FineTuning ? "Fine-tuning (Mode = FineTuning)" : $"Head = {head}";
}

/// <summary>
/// Where a run's conv base comes from: a preset's composed graph (on disk), or a saved model's embedded one. The graph
/// is parsed only when something needs its nodes (a cut for fine-tuning, the TorchSharp import, the write-back).
/// </summary>
internal sealed class BaseSource
{
    private readonly Lazy<ModelProto> _composed;

    /// <param name="preset">The preset, with the input size the base takes.</param>
    /// <param name="composed">The composed graph (for continued training: the tuned one, without an MLP hidden layer).</param>
    /// <param name="graph">The graph file, when the graph is a preset's (null for continued training).</param>
    /// <param name="featureLength">Length of the graph's feature output.</param>
    /// <param name="baseSha256">SHA-256 of the conv-base file, for the metadata.</param>
    public BaseSource(ConvBasePreset preset, Func<ModelProto> composed, FeaturizerGraphFile? graph, int featureLength, string baseSha256)
    {
        Preset = preset;
        _composed = new Lazy<ModelProto>(composed);
        Graph = graph;
        FeatureLength = featureLength;
        BaseSha256 = baseSha256;
    }

    public ConvBasePreset Preset { get; }

    public ModelProto Composed => _composed.Value;

    public FeaturizerGraphFile? Graph { get; }

    public int FeatureLength { get; }

    public string BaseSha256 { get; }

    /// <summary>The graph up to <paramref name="tensor"/>, for the featurization pipeline.</summary>
    public GraphPrefix Prefix(string tensor) =>
        Graph is not null ? GraphPrefix.Of(Graph, tensor, () => Composed) : GraphPrefix.Cut(Composed, tensor, Preset.Preprocessing);

    /// <summary>A preset's composed graph, as built (and verified) in the cache.</summary>
    public static BaseSource Of(FeaturizerGraphFile graph, string baseSha256 = "") =>
        new(graph.Preset, () => OnnxGraph.Load(graph.Path), graph, graph.FeatureLength, baseSha256);
}

/// <summary>
/// How a run is shaped. Fixed modes: as documented on the options. Mode = Auto's candidates: a share is held out for
/// every head (all are scored on the same images), a reported-only split may carry another name (the user's validation
/// split, when it is the one reported), an L-BFGS refit chooses its L2 again on all the images, as the fixed mode does,
/// and the test split is reported first.
/// </summary>
internal sealed record CandidateShape(bool AlwaysHoldOut, bool RechooseL2, string TestName, string? ChoiceWords, string HeldName = "validation")
{
    /// <summary>The test split is the reported one even beside a validation split (which chose the mode).</summary>
    public bool TestFirst { get; init; }

    public static readonly CandidateShape Fixed = new(false, false, "test", null);
}

/// <summary>A run after its first fit: what <see cref="ImageClassifierTrainer.Complete"/> needs to finish it, or what is freed when it is not chosen.</summary>
internal sealed class FirstFit(TrainingRun run, IHeadFitter fitter, FittedHead first, SplitPlan split, ViewSet train, ViewSet chooseOn, ViewSet test,
    float[][]? scored, CandidateShape shape, int fitCount) : IDisposable
{
    public TrainingRun Run { get; } = run;
    public IHeadFitter Fitter { get; } = fitter;
    public FittedHead First { get; } = first;
    public SplitPlan Split { get; } = split;
    public ViewSet Train { get; } = train;
    public ViewSet ChooseOn { get; } = chooseOn;
    public ViewSet Test { get; } = test;

    /// <summary>Probabilities of the first fit on the images it chooses on (null when there are none).</summary>
    public float[][]? Scored { get; } = scored;
    public CandidateShape Shape { get; } = shape;

    /// <summary>Images the first fit trained on.</summary>
    public int FitCount { get; } = fitCount;

    /// <summary>Time spent featurizing (mostly reading the cache after the first run of a cut).</summary>
    public TimeSpan FeaturizeTime { get; init; }

    /// <summary>Time the first fit took, featurization aside.</summary>
    public TimeSpan FitTime { get; init; }

    /// <summary>What the data checks found on this run's own views (fixed feature extraction); null where they ran before it, or not at all.</summary>
    public DataCheckReport? DataChecks { get; init; }

    /// <summary>The report of the first fit on the images it chooses on.</summary>
    public Evaluation.ClassificationReport? ChoiceReport(string split) =>
        Scored is null ? null : ImageClassifierTrainer.Report(split, ChooseOn, Scored, Run.Dataset.Classes, ofSavedModel: false);

    /// <summary>The first fit is no longer needed once another (the refit) is final.</summary>
    public void Release(FittedHead final)
    {
        if (!ReferenceEquals(final, First))
            First.Dispose();
    }

    public void Dispose()
    {
        First.Dispose();
        Run.Dispose();
    }
}

