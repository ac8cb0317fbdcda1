using System.IO.Compression;
using MlNetTransfer.Backbones;
using MlNetTransfer.Data;
using MlNetTransfer.Evaluation;
using MlNetTransfer.Featurization;
using MlNetTransfer.Inference;
using MlNetTransfer.Tests.Fixtures;
using MlNetTransfer.Training;

namespace MlNetTransfer.Tests;

/// <summary>
/// Mode = Auto on a VGG16-shaped graph (small and fast): every candidate is fit and scored on images no reported figure
/// comes from, the one kept is finished as its fixed mode would be, the reported split cannot move the choice, a seed
/// gives the same model, and the options it does not read are refused.
/// </summary>
public class AutoModeTests
{
    private static ImageClassifierTrainerOptions Auto(ConvBasePreset preset, string cache, IReadOnlyList<ModeCandidate>? candidates = null, TimeSpan? budget = null) => new()
    {
        ConvBase = preset,
        Mode = TrainingMode.Auto,
        Seed = 3,
        Threads = 2,
        // The fine-tuning part of the quick recipe only where a fine-tuning candidate reads it.
        FineTuning = (candidates ?? ModeSearchOptions.AllCandidates).Any(c => c is ModeCandidate.FineTuneTopBlock or ModeCandidate.FineTuneTopTwoBlocks)
            ? FineTuneTests.Quick
            : FineTuneTests.Quick with { Epochs = new FineTuningOptions().Epochs },
        Featurizer = new FeaturizerOptions { CacheRoot = cache },
        ModeSearch = new ModeSearchOptions { Candidates = candidates ?? ModeSearchOptions.AllCandidates, TimeBudget = budget ?? TimeSpan.FromMinutes(20) },
    };

    private static ConvBasePreset Vgg(TestData.TempFolder temp) =>
        ConvBaseRegistry.Get("vgg16-torchvision").WithModelFile(Vgg16ShapedOnnx.WriteTorchvisionLike(temp.File("vgg.onnx")));

    /// <summary>The Fashion subset with its test images as a validation split (and, optionally, labels moved one class on).</summary>
    private static ImageDataset WithValidation(ImageDataset d, bool wrongLabels = false, bool keepTest = false)
    {
        var validation = d.Test.Select(i => wrongLabels ? i with { Label = d.Classes[(d.Classes.ToList().IndexOf(i.Label) + 1) % d.Classes.Count] } : i).ToList();
        return new ImageDataset(d.Source, d.SplitOrigin, d.Train, keepTest ? d.Train.Take(0).ToList() : validation, keepTest ? validation : [], []);
    }

    [Fact]
    public void EveryCandidateIsScoredOnHeldOutTrainingImagesAndTheOneKeptIsFinishedAsItsModeWouldBe()
    {
        using var temp = new TestData.TempFolder();
        var data = TestData.FashionSubset(3, 10, 4);
        using var trained = new ImageClassifierTrainer(Auto(Vgg(temp), temp.File("cache"))).Train(data);

        var selection = trained.Metadata.ModeSelection!;
        Assert.Equal(4, selection.Candidates.Count);
        Assert.All(selection.Candidates, c => Assert.NotNull(c.Accuracy));
        Assert.StartsWith("held-out training images", selection.ChosenOn);
        Assert.Equal(trained.Metadata.Training.HeldOut, selection.Images);
        Assert.Equal(["", "", "block5", "block4, block5"], selection.Candidates.Select(c => c.Blocks));
        var chosen = Assert.Single(selection.Candidates, c => c.Chosen);
        Assert.Equal(chosen.Candidate, selection.Chosen);
        Assert.Equal(chosen.Mode, trained.Metadata.Mode);
        Assert.Equal(chosen.Head, trained.Metadata.Head.Kind);
        Assert.False(string.IsNullOrWhiteSpace(selection.Decision));
        // Each dearer one was compared with the one kept when its turn came.
        Assert.All(selection.Candidates.Skip(1), c => Assert.NotNull(c.LogLossGainLow));
        // When the first was kept, the near miss the sentence names is the one that gained most accuracy, not a worse one with a low p.
        if (selection.Candidates[0].Chosen)
        {
            var nearest = selection.Candidates.Skip(1).OrderByDescending(c => c.AccuracyGain).ThenBy(c => c.McNemarP).First();
            Assert.Contains($"(closest: {nearest.Candidate},", selection.Decision);
        }
        // Finished: refit on every training image; the test split is reported, first; the held-out figure says what it chose.
        Assert.True(trained.Metadata.Training.Refit);
        Assert.Equal(data.Train.Count, trained.Metadata.Training.ImagesInModel);
        Assert.Equal("test", trained.Reports[0].Split);
        Assert.Contains("it chose the mode", trained.Reports[1].Split);
        var zip = temp.File("auto.zip");
        trained.Save(zip);
        Assert.Equal(selection.Decision, ModelArchive.ReadMetadata(zip)!.ModeSelection!.Decision);
    }

    [Fact]
    public void TheReportedSplitCannotChangeTheChoice()
    {
        // The user's validation split is the reported one when there is no test split: the labels it carries change its
        // figure, and nothing of the choice.
        using var temp = new TestData.TempFolder();
        var preset = Vgg(temp);
        var data = TestData.FashionSubset(3, 10, 4);
        ModelMetadata.ModeSelectionInfo Choose(ImageDataset d, out double reported)
        {
            using var trained = new ImageClassifierTrainer(Auto(preset, temp.File("cache"), [ModeCandidate.LbfgsHead, ModeCandidate.MlpHead])).Train(d);
            Assert.Equal("validation", trained.Reports[0].Split);
            reported = trained.Reports[0].MicroAccuracy;
            return trained.Metadata.ModeSelection!;
        }
        var right = Choose(WithValidation(data), out var rightAccuracy);
        var wrong = Choose(WithValidation(data, wrongLabels: true), out var wrongAccuracy);
        Assert.NotEqual(rightAccuracy, wrongAccuracy);
        // To 6 digits: a later TorchSharp run in one process may differ from the first in the last bits (two processes agree to
        // the bit: TheSameSeedGivesTheSameChoiceAndTheSameModel); a label the choice read would move these by far more.
        static object Scores(ModelMetadata.ModeSelectionInfo s) => string.Join("|", s.Candidates.Select(c => $"{c.Candidate} {c.Accuracy:F6} {c.LogLoss:F6} {c.LogLossGainLow:F6} {c.Chosen} {c.Status}"));
        Assert.Equal(Scores(right), Scores(wrong));
        Assert.Equal(right.Chosen, wrong.Chosen);

        // With a validation and a test split, the validation split chooses: the test labels change nothing of it.
        var withTest = new ImageDataset(data.Source, data.SplitOrigin, data.Train.Where((_, k) => k % 5 != 0).ToList(), data.Train.Where((_, k) => k % 5 == 0).ToList(), data.Test, []);
        ModelMetadata.ModeSelectionInfo ChooseWithTest(bool wrongTest, out double test)
        {
            var d = wrongTest ? new ImageDataset(withTest.Source, withTest.SplitOrigin, withTest.Train, withTest.Validation, WithValidation(data, wrongLabels: true).Validation, []) : withTest;
            using var trained = new ImageClassifierTrainer(Auto(preset, temp.File("cache"), [ModeCandidate.LbfgsHead, ModeCandidate.MlpHead])).Train(d);
            Assert.Equal("test", trained.Reports[0].Split);
            Assert.Equal("validation images", trained.Metadata.ModeSelection!.ChosenOn);
            test = trained.Reports[0].MicroAccuracy;
            return trained.Metadata.ModeSelection;
        }
        var a = ChooseWithTest(false, out var testRight);
        var b = ChooseWithTest(true, out var testWrong);
        Assert.NotEqual(testRight, testWrong);
        Assert.Equal(Scores(a), Scores(b));
    }

    [Fact]
    public void TheSameSeedGivesTheSameChoiceAndTheSameModel()
    {
        // Two runs as a user makes them: two processes, each with its own cache (the second reads nothing the first computed).
        using var temp = new TestData.TempFolder();
        var model = Vgg16ShapedOnnx.WriteTorchvisionLike(temp.File("vgg.onnx"));
        var data = temp.File("data.csv");
        var subset = TestData.FashionSubset(3, 10, 4);
        File.WriteAllLines(data, ["path,label,split", .. subset.Train.Select(i => $"{i.Path},{i.Label},train"), .. subset.Test.Select(i => $"{i.Path},{i.Label},test")]);
        (Dictionary<string, byte[]> Entries, ModelMetadata Metadata) Train(string name)
        {
            var zip = temp.File(name + ".zip");
            var run = Processes.RunWith(new Dictionary<string, string> { ["MLNETTRANSFER_CACHE"] = temp.File("cache-" + name) }, Processes.CliDll,
                ["train", data, "--out", zip, "--base", "vgg16-torchvision", "--base-model", model, "--seed", "3", "--threads", "2",
                 "--head-epochs", "2", "--epochs", "2", "--augment", "1"]);
            Assert.True(run.ExitCode == 0, run.StdOut + run.StdErr);
            using var archive = ZipFile.OpenRead(zip);
            var entries = archive.Entries.Where(e => e.FullName != ModelMetadata.EntryName).ToDictionary(e => e.FullName, e =>
            {
                using var s = e.Open();
                using var m = new MemoryStream();
                s.CopyTo(m);
                return m.ToArray();
            });
            return (entries, ModelArchive.ReadMetadata(zip)!);
        }
        var first = Train("a");
        var second = Train("b");
        static string Rows(ModelMetadata m) => string.Join("\n", m.ModeSelection!.Candidates.Select(c => $"{c.Candidate}: {c.Accuracy:R} {c.LogLoss:R} {c.Choice} {c.Status}"));
        Assert.Equal(4, first.Metadata.ModeSelection!.Candidates.Count(c => c.Accuracy is not null));
        Assert.Equal(Rows(first.Metadata), Rows(second.Metadata));
        Assert.Equal(first.Metadata.ModeSelection.Chosen, second.Metadata.ModeSelection!.Chosen);
        Assert.Equal(first.Entries.Keys.Order(), second.Entries.Keys.Order());
        foreach (var (name, bytes) in first.Entries)
            Assert.True(bytes.AsSpan().SequenceEqual(second.Entries[name]), $"{name} differs between two runs of the same seed");
    }

    [Fact]
    public void ABudgetNoCandidateCanFinishInIsAnErrorThatSaysSo()
    {
        using var temp = new TestData.TempFolder();
        var error = Assert.Throws<TrainingTimeBudgetException>(() =>
            new ImageClassifierTrainer(Auto(Vgg(temp), temp.File("cache"), budget: TimeSpan.FromMilliseconds(1))).Train(TestData.FashionSubset(3, 6, 2)));
        Assert.Contains("time budget", error.Message);
    }

    [Theory]
    [InlineData("Head")]
    [InlineData("FineTuning.Unfreeze")]
    [InlineData("Precision")]
    [InlineData("ModeSearch.Candidates")]
    [InlineData("ModeSearch.TimeBudget")]
    [InlineData("Lbfgs.L2")]
    [InlineData("FineTuning.Epochs")]
    public void WhatAutoChoosesOrNoCandidateReadsIsRefusedByName(string option)
    {
        var auto = new ImageClassifierTrainerOptions { Mode = TrainingMode.Auto };
        var options = option switch
        {
            "Head" => auto with { Head = HeadKind.TorchSharpMlp },
            "FineTuning.Unfreeze" => auto with { FineTuning = new FineTuningOptions { Unfreeze = "2" } },
            "Precision" => auto with { Precision = ConvBasePrecision.Int8 },
            "ModeSearch.Candidates" => auto with { ModeSearch = new ModeSearchOptions { Candidates = [ModeCandidate.MlpHead, ModeCandidate.MlpHead] } },
            "ModeSearch.TimeBudget" => new ImageClassifierTrainerOptions { ModeSearch = new ModeSearchOptions { TimeBudget = TimeSpan.FromMinutes(3) } },
            "Lbfgs.L2" => auto with { Lbfgs = new LbfgsHeadOptions { L2 = 1 }, ModeSearch = new ModeSearchOptions { Candidates = [ModeCandidate.FineTuneTopBlock] } },
            _ => auto with { FineTuning = new FineTuningOptions { Epochs = 3 }, ModeSearch = new ModeSearchOptions { Candidates = [ModeCandidate.LbfgsHead, ModeCandidate.MlpHead] } },
        };
        var error = Assert.Throws<TrainingOptionsException>(options.Validate);
        Assert.Equal(option, error.Option);
        // What the candidates do read is accepted.
        (auto with { FineTuning = new FineTuningOptions { Epochs = 3 }, Lbfgs = new LbfgsHeadOptions { L2 = 1 } }).Validate();
    }

    [Fact]
    public void TheConsoleShowsTheCandidatesAndTheDecisionAndInfoKeepsThem()
    {
        using var temp = new TestData.TempFolder();
        var model = Vgg16ShapedOnnx.WriteTorchvisionLike(temp.File("vgg.onnx"));
        var zip = temp.File("m.zip");
        var env = new Dictionary<string, string> { ["MLNETTRANSFER_CACHE"] = temp.File("cache") };
        var train = Processes.RunWith(env, Processes.CliDll, ["train", TestData.FashionSample, "--out", zip, "--base", "vgg16-torchvision", "--base-model", model,
            "--candidates", "lbfgs,mlp", "--head-epochs", "2", "--augment", "1", "--threads", "2"]);
        Assert.True(train.ExitCode == 0, train.StdOut + train.StdErr);
        Assert.Contains("Candidates", train.StdOut);
        Assert.Contains("Decision: ", train.StdOut);
        Assert.Contains("frozen base + MLP head", train.StdOut);
        var info = Processes.RunWith(env, Processes.CliDll, ["info", zip]);
        Assert.Contains("decision", info.StdOut);
        Assert.Contains("chosen by mode auto", info.StdOut);
        Assert.Contains("How the mode was chosen", File.ReadAllText(temp.File(Path.Combine("report", "report.html"))));
    }
}
