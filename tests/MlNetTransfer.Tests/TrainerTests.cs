using System.Text.Json;
using MlNetTransfer.Backbones;
using MlNetTransfer.Cli.Commands;
using MlNetTransfer.Data;
using MlNetTransfer.Featurization;
using MlNetTransfer.Inference;
using MlNetTransfer.Onnx;
using MlNetTransfer.Tests.Fixtures;
using MlNetTransfer.Training;
using MlNetTransfer.Training.Backends;

namespace MlNetTransfer.Tests;

/// <summary>
/// The one trainer: its options are checked by the library before any work (an option that does nothing on a path is
/// refused by name), every labelled image goes into the final model, and it plugs its TorchSharp backend in by name.
/// </summary>
public class TrainerTests
{
    private const string NoSuchData = "/no/such/folder";

    public static TheoryData<string, Func<ImageClassifierTrainerOptions, ImageClassifierTrainerOptions>> Refused => new()
    {
        // Out of range.
        { "Data.ValidationFraction", o => o with { Data = new DatasetOptions { ValidationFraction = 1.5 } } },
        { "Threads", o => o with { Threads = 0 } },
        { "Featurizer.BatchSize", o => o with { Featurizer = new FeaturizerOptions { BatchSize = 0 } } },
        { "Lbfgs.Folds", o => o with { Lbfgs = new LbfgsHeadOptions { Folds = 1 } } },
        { "Lbfgs.L2", o => o with { Lbfgs = new LbfgsHeadOptions { L2 = -1 } } },
        { "FineTuning.LearningRate", o => o with { Head = HeadKind.TorchSharpMlp, FineTuning = new FineTuningOptions { LearningRate = 0 } } },
        { "FineTuning.Patience", o => o with { Mode = TrainingMode.FineTuning, FineTuning = new FineTuningOptions { Patience = 0 } } },
        { "ImageChecks.MinSide", o => o with { ImageChecks = new ImageValidationOptions { MinSide = 0 } } },
        // Contradictions.
        { "Head", o => o with { Mode = TrainingMode.FineTuning, Head = HeadKind.LbfgsSoftmax } },
        { "Precision", o => o with { Mode = TrainingMode.FineTuning, Precision = ConvBasePrecision.Int8 } },
        { "Featurizer.Shards", o => o with { Featurizer = new FeaturizerOptions { UseCache = false, Shards = ["a.shard"] } } },
        // Set, and doing nothing on the path they were given for.
        { "FineTuning.AugmentedViews", o => o with { FineTuning = new FineTuningOptions { AugmentedViews = 2 } } },
        { "FineTuning.LearningRate", o => o with { FineTuning = new FineTuningOptions { LearningRate = 1e-2 } } },
        { "FineTuning.Epochs", o => o with { Head = HeadKind.TorchSharpMlp, FineTuning = new FineTuningOptions { Epochs = 3 } } },
        { "FineTuning.Unfreeze", o => o with { Head = HeadKind.TorchSharpSoftmax, FineTuning = new FineTuningOptions { Unfreeze = "stage4" } } },
        { "FineTuning.BlockLearningRateFactor", o => o with { Head = HeadKind.TorchSharpSoftmax, FineTuning = new FineTuningOptions { BlockLearningRateFactor = 0.1 } } },
        { "Lbfgs.L2", o => o with { Mode = TrainingMode.FineTuning, Lbfgs = new LbfgsHeadOptions { L2 = 1 } } },
        { "Lbfgs.Folds", o => o with { Head = HeadKind.TorchSharpMlp, Lbfgs = new LbfgsHeadOptions { Folds = 3 } } },
        { "Resume", o => o with { Resume = true } },
        { "CheckpointFolder", o => o with { CheckpointFolder = "x" } },
        { "Int8.CalibrationImages", o => o with { Int8 = new Int8QuantizationOptions { CalibrationImages = 10 } } },
        { "Lbfgs.Folds", o => o with { Lbfgs = new LbfgsHeadOptions { L2 = 1, Folds = 3 } } }, // a given L2 is not cross-validated
        { "Mirror", o => o with { Head = HeadKind.TorchSharpMlp, Mirror = false, FineTuning = new FineTuningOptions { AugmentedViews = 0 } } }, // no crops to flip
        { "FineTuning.HeadEpochs", o => o with { Head = HeadKind.TorchSharpMlp, FineTuning = new FineTuningOptions { HeadEpochs = 0 } } }, // nothing would train
        { "FineTuning.Epochs", o => o with { Mode = TrainingMode.FineTuning, FineTuning = new FineTuningOptions { HeadEpochs = 0, Epochs = 0 } } },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public void AnOptionOutOfRangeOrDoingNothingIsRefusedByNameBeforeAnyWork(string option, Func<ImageClassifierTrainerOptions, ImageClassifierTrainerOptions> set)
    {
        var trainer = new ImageClassifierTrainer(set(new ImageClassifierTrainerOptions()));
        // Before any work: the data path does not exist, and is not what is reported.
        var e = Assert.Throws<TrainingOptionsException>(() => trainer.Train(NoSuchData));
        Assert.Equal(option, e.Option);
        Assert.StartsWith(option, e.Message);
    }

    [Fact]
    public void OptionsThatDoWorkOnAPathAreAccepted()
    {
        new ImageClassifierTrainerOptions().Validate();
        new ImageClassifierTrainerOptions { Head = HeadKind.TorchSharpMlp, FineTuning = new FineTuningOptions { AugmentedViews = 2, LearningRate = 1e-2, HeadEpochs = 3 } }.Validate();
        new ImageClassifierTrainerOptions { Mode = TrainingMode.FineTuning, FineTuning = new FineTuningOptions { Unfreeze = "stage4", Epochs = 3, Patience = 2 }, Resume = true }.Validate();
        new ImageClassifierTrainerOptions { Precision = ConvBasePrecision.Int8, Head = HeadKind.TorchSharpMlp, Mirror = false }.Validate();
        new ImageClassifierTrainerOptions { Lbfgs = new LbfgsHeadOptions { L2 = 1, L1 = 0.1f }, Mirror = false, Refit = false }.Validate();
        new ImageClassifierTrainerOptions { Lbfgs = new LbfgsHeadOptions { Folds = 3, L2Grid = [1, 10] } }.Validate();
    }

    [Fact]
    public void TheRangeTestRefusesWhatItDoesNotUse()
    {
        var dataset = TestData.FashionSubset(2, 4, 1);
        var e = Assert.Throws<TrainingOptionsException>(() => new ImageClassifierTrainer(new() { Head = HeadKind.LbfgsSoftmax }).FindLearningRate(dataset));
        Assert.Equal("Head", e.Option);
        Assert.Equal("FineTuning.Epochs", Assert.Throws<TrainingOptionsException>(() =>
            new ImageClassifierTrainer(new() { Mode = TrainingMode.FineTuning, FineTuning = new FineTuningOptions { Epochs = 3 } }).FindLearningRate(dataset)).Option);
        Assert.Equal("Range.End", Assert.Throws<TrainingOptionsException>(() =>
            new ImageClassifierTrainer().FindLearningRate(dataset, new LearningRateRange { Start = 1, End = 0.5 })).Option);
    }

    [Fact]
    public void AFolderWithoutSplitsGivesAModelFitOnEveryImageAndSaysWhichFigureIsWhich()
    {
        using var temp = new TestData.TempFolder();
        var root = OneFolder(temp, classes: 3, perClass: 10);
        var options = new ImageClassifierTrainerOptions { Featurizer = new FeaturizerOptions { CacheRoot = temp.File("cache") } };
        using var refit = new ImageClassifierTrainer(options).Train(root);
        var t = refit.Metadata.Training;
        Assert.Equal(30, t.ImagesPerSplit["train"]);
        Assert.Equal(30, t.ImagesInModel);
        Assert.Equal(6, t.HeldOut);
        Assert.True(t.Refit);
        var estimate = Assert.Single(refit.Reports);
        Assert.Equal(6, estimate.Count);
        Assert.Contains("held out by the trainer; estimate before the refit", estimate.Split);

        // The refit is the model an L-BFGS fit on all 30 with the chosen L2 makes: the held-out images are in it.
        float l2 = refit.Metadata.Head.L2!.Value;
        var all = ImageDatasetLoader.Load(root);
        var everything = new ImageDataset(all.Source, "folders", all.Train, [], all.Train.Take(3).ToList(), []);
        using var direct = new ImageClassifierTrainer(options with { Lbfgs = new LbfgsHeadOptions { L2 = l2 } }).Train(everything);
        refit.Save(temp.File("refit.zip"));
        direct.Save(temp.File("direct.zip"));
        Assert.Equal(ActivationStoreTests.Scores(temp.File("direct.zip"), all.Train), ActivationStoreTests.Scores(temp.File("refit.zip"), all.Train));

        // Without the refit the held-out images stay out, and the report says so.
        using var kept = new ImageClassifierTrainer(options with { Refit = false }).Train(root);
        Assert.Equal((24, 6, false), (kept.Metadata.Training.ImagesInModel, kept.Metadata.Training.HeldOut, kept.Metadata.Training.Refit));
        Assert.Equal("validation (held out by the trainer)", kept.Reports[0].Split);
    }

    [Fact]
    public void AFolderWithoutSplitsFineTunedChoosesTheEpochOnTheHeldOutShareThenFitsOnEveryImage()
    {
        using var temp = new TestData.TempFolder();
        var root = OneFolder(temp, classes: 3, perClass: 5);
        var preset = ConvBaseRegistry.Get("vgg16-torchvision").WithModelFile(Vgg16ShapedOnnx.WriteTorchvisionLike(temp.File("vgg.onnx")));
        var notes = new List<string>();
        using var trained = new ImageClassifierTrainer(new ImageClassifierTrainerOptions
        {
            ConvBase = preset, Mode = TrainingMode.FineTuning, Threads = 2, FineTuning = FineTuneTests.Quick with { Unfreeze = "block5" },
            Featurizer = new FeaturizerOptions { CacheRoot = temp.File("cache") },
        }).Train(root, new ActivationStoreTests.Notes(notes));
        var t = trained.Metadata.Training;
        Assert.Equal((15, 3, true), (t.ImagesInModel, t.HeldOut, t.Refit));
        var ft = trained.Metadata.FineTune!;
        Assert.All(ft.Epochs, e => Assert.False(double.IsNaN(e.ValidationLoss))); // chosen on the held-out share
        Assert.NotEmpty(ft.RefitEpochs);
        Assert.All(ft.RefitEpochs, e => Assert.True(double.IsNaN(e.ValidationLoss))); // the refit has nothing held out
        Assert.Contains(notes, n => n.StartsWith("refitting on all 15 training images", StringComparison.Ordinal));
        Assert.Contains("estimate before the refit", Assert.Single(trained.Reports).Split);
    }

    [Fact]
    public void AddingImagesToACachedFineTuningSetRunsTheFrozenPartOnThoseOnly()
    {
        using var temp = new TestData.TempFolder();
        var preset = ConvBaseRegistry.Get("vgg16-torchvision").WithModelFile(Vgg16ShapedOnnx.WriteTorchvisionLike(temp.File("vgg.onnx")));
        var options = new ImageClassifierTrainerOptions
        {
            ConvBase = preset, Mode = TrainingMode.FineTuning, Threads = 2, FineTuning = FineTuneTests.Quick with { Unfreeze = "block5", AugmentedViews = 2 },
            Featurizer = new FeaturizerOptions { CacheRoot = temp.File("cache") },
        };
        var small = TestData.FashionSubset(3, 6, 3);
        var larger = TestData.FashionSubset(3, 8, 3);
        var first = new ActivationStoreTests.Counter();
        using (new ImageClassifierTrainer(options).Train(small, first)) { }
        Assert.Equal(small.Train.Count * 3 + small.Test.Count, first.ViewsComputed);
        var second = new ActivationStoreTests.Counter();
        using (new ImageClassifierTrainer(options).Train(larger, second)) { }
        int added = larger.Train.Count - small.Train.Count;
        Assert.Equal(6, added);
        Assert.Equal(added, second.Computed);
        Assert.Equal(added * 3, second.ViewsComputed); // the plain view and 2 crops of each new image, nothing else
    }

    [Fact]
    public void NoMirrorReachesTheTorchSharpHeadsCrops()
    {
        using var temp = new TestData.TempFolder();
        var preset = ConvBaseRegistry.Get("vgg16-torchvision").WithModelFile(Vgg16ShapedOnnx.WriteTorchvisionLike(temp.File("vgg.onnx")));
        ImageClassifierTrainerOptions Options(bool mirror) => new()
        {
            ConvBase = preset, Head = HeadKind.TorchSharpMlp, Threads = 2, Mirror = mirror,
            FineTuning = new FineTuningOptions { HeadEpochs = 2, AugmentedViews = 2, BatchSize = 8 },
            Featurizer = new FeaturizerOptions { CacheRoot = temp.File("cache") },
        };
        var dataset = TestData.FashionSubset(2, 4, 1);
        using (var flipping = new ImageClassifierTrainer(Options(true)).Train(dataset))
            Assert.True(flipping.Metadata.Training.MirrorAugmentation);
        using (var unflipped = new ImageClassifierTrainer(Options(false)).Train(dataset))
            Assert.False(unflipped.Metadata.Training.MirrorAugmentation);
        var entries = Directory.GetFiles(ActivationStore.ViewsRoot(temp.File("cache")), "*.view", SearchOption.AllDirectories).Select(Path.GetFileName).ToList();
        Assert.Equal(dataset.Train.Count * 2, entries.Count(e => e!.Contains(".crop") && !e.Contains("-noflip")));
        Assert.Equal(dataset.Train.Count * 2, entries.Count(e => e!.Contains("-noflip")));
    }

    [Fact]
    public void WithoutTheTorchSharpAssemblyATorchSharpPathIsOneErrorNamingThePackage()
    {
        var e = Assert.Throws<TrainingBackendMissingException>(() => TrainingBackends.TorchSharp("Fine-tuning (Mode = FineTuning)", "MlNetTransfer.NoSuchBackend"));
        Assert.Contains("needs the package MlNetTransfer.NoSuchBackend", e.Message);
        // The core assembly references neither TorchSharp nor the backend.
        var references = typeof(ImageClassifierTrainer).Assembly.GetReferencedAssemblies().Select(a => a.Name!).ToList();
        Assert.DoesNotContain(references, r => r.Contains("Torch", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public void AnAppWithTheCoreAloneTrainsTheLbfgsHeadAndIsToldWhatFineTuningNeeds()
    {
        using var temp = new TestData.TempFolder();
        var root = OneFolder(temp, classes: 2, perClass: 5);
        var run = Processes.RunWith(new Dictionary<string, string> { ["MLNETTRANSFER_CACHE"] = temp.File("cache") }, Processes.CoreOnlyTrainerDll, root, temp.File("m.zip"));
        Assert.True(run.ExitCode == 0, run.StdOut + run.StdErr);
        Assert.Contains("trained lbfgs-softmax on 10 images", run.StdOut);
        Assert.Contains("refused: Fine-tuning (Mode = FineTuning) trains in TorchSharp, which needs the package MlNetTransfer.TorchSharp", run.StdOut);
        Assert.False(File.Exists(Path.Combine(Path.GetDirectoryName(Processes.CoreOnlyTrainerDll)!, "MlNetTransfer.TorchSharp.dll")));
        Assert.True(File.Exists(temp.File("m.zip")));
    }

    [Fact]
    public void MetadataOfTheFirstFormatLoadsWithItsMeaning()
    {
        // What version 0.1 wrote for a fine-tuned model: "linear" meant TorchSharp here, and L2 held the weight decay.
        var v1 = """
            {"formatVersion":1,"tool":"MlNetTransfer 0.1.0","createdUtc":"2026-11-29T10:00:00+00:00","mode":"fine-tune",
             "convBase":{"name":"resnet18","description":"d","preprocessing":"p","pooling":"Average","featureLength":512,"modelSha256":"x"},
             "classes":["ants","bees"],"head":{"kind":"linear","l1":0,"l2":0.0001,"crossValidation":[]},
             "training":{"data":"/d","splitOrigin":"folders","seed":1,"mirrorAugmentation":false,"imagesPerSplit":{"train":244,"validation":153,"test":0},"skippedFiles":1,"options":{}},
             "fineTune":{"unfreeze":"stage4","boundary":"b","unfrozenBlocks":["stage4"],"augmentedViews":4,"epochs":[],"bestEpoch":"head 5","stoppedByUser":false},
             "metrics":[]}
            """;
        var ft = ModelMetadata.FromJson(v1);
        Assert.Equal(ModelMetadata.HeadKinds.TorchSharpSoftmax, ft.Head.Kind);
        Assert.Null(ft.Head.L2);
        Assert.Equal(1e-4, ft.Head.WeightDecay!.Value, 1e-9);
        Assert.Equal(244, ft.Training.ImagesInModel);
        var node = System.Text.Json.Nodes.JsonNode.Parse(v1)!.AsObject();
        node["mode"] = "feature-extraction";
        node["head"]!["l2"] = 30;
        node.Remove("fineTune");
        var lbfgs = ModelMetadata.FromJson(node.ToJsonString());
        Assert.Equal(ModelMetadata.HeadKinds.LbfgsSoftmax, lbfgs.Head.Kind);
        Assert.Equal(30f, lbfgs.Head.L2);
        Assert.Null(lbfgs.Head.WeightDecay);
        // Brought to the current format, it reads back as written.
        Assert.Equal(ModelMetadata.CurrentFormatVersion, ft.FormatVersion);
        Assert.Equal(ft.ToJson(), ModelMetadata.FromJson(ft.ToJson()).ToJson());
    }

    [Fact]
    public void TheConsolesDefaultsAreTheLibrarysDefaults()
    {
        static string Json(ImageClassifierTrainerOptions o) => JsonSerializer.Serialize(o, new JsonSerializerOptions { WriteIndented = true });
        var library = Json(new ImageClassifierTrainerOptions());
        // train's one difference, on purpose: its mode is auto (the library's default stays the cheap, fixed feature extraction).
        Assert.Equal(Json(new ImageClassifierTrainerOptions { Mode = TrainingMode.Auto }), Json(new TrainSettings().Options()));
        Assert.Equal(library, Json(new RetrainSettings().Options()));
        Assert.Equal(library, Json(new FeaturizeSettings().Options()));
        Assert.Equal(library, Json(new LrFindSettings().Options()));
    }

    /// <summary>A folder of class folders without split folders (a user's <c>photos/</c>), copied from the Fashion sample.</summary>
    private static string OneFolder(TestData.TempFolder temp, int classes, int perClass)
    {
        var root = temp.File("photos");
        foreach (var image in TestData.FashionSubset(classes, perClass, 0).Train)
        {
            var target = Path.Combine(root, image.Label, Path.GetFileName(image.Path));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(image.Path, target);
        }
        return root;
    }
}
