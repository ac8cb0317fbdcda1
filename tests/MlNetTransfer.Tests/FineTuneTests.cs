using System.Text.Json;
using Google.Protobuf;
using MlNetTransfer.Backbones;
using MlNetTransfer.Data;
using MlNetTransfer.Inference;
using MlNetTransfer.Onnx;
using MlNetTransfer.Progress;
using MlNetTransfer.Tests.Fixtures;
using MlNetTransfer.Training;
using Onnx;

namespace MlNetTransfer.Tests;

/// <summary>
/// Fine-tuning on VGG16-shaped graphs (small and fast) and on the embedded ResNet18: only the unfrozen block changes,
/// the written-back model predicts what TorchSharp computed, seeds repeat, and a saved model trains further.
/// </summary>
public class FineTuneTests
{
    internal static readonly FineTuningOptions Quick = new() { HeadEpochs = 2, Epochs = 2, AugmentedViews = 1, BatchSize = 8, Patience = 5 };

    private static (ConvBasePreset Preset, ModelProto Composed) Vgg(TestData.TempFolder temp)
    {
        var preset = ConvBaseRegistry.Get("vgg16-torchvision").WithModelFile(Vgg16ShapedOnnx.WriteTorchvisionLike(temp.File("vgg.onnx")));
        return (preset, OnnxGraph.Load(FeaturizerGraphCache.GetOrBuild(preset).Path));
    }

    private static TrainedImageClassifier FineTune(ConvBasePreset preset, ImageDataset dataset, FineTuningOptions recipe, bool fineTune = true, int seed = 1,
        HeadKind head = HeadKind.TorchSharpSoftmax) =>
        new ImageClassifierTrainer(new ImageClassifierTrainerOptions
        {
            ConvBase = preset, FineTuning = fineTune ? recipe : recipe with { Epochs = new FineTuningOptions().Epochs }, Head = head, Seed = seed, Threads = 2,
            Mode = fineTune ? TrainingMode.FineTuning : TrainingMode.FeatureExtraction,
        }).Train(dataset);

    private static Dictionary<string, byte[]> Initializers(ModelProto model) =>
        model.Graph.Initializer.ToDictionary(t => t.Name, t => OnnxGraph.ReadFloats(t).SelectMany(BitConverter.GetBytes).ToArray());

    [Fact]
    public void UnfreezingBlock5ChangesOnlyBlock5AndTheHead()
    {
        using var temp = new TestData.TempFolder();
        var (preset, original) = Vgg(temp);
        using var trained = FineTune(preset, TestData.FashionSubset(3, 6, 3), Quick with { Unfreeze = "block5" });
        var zip = temp.File("ft.zip");
        trained.Save(zip);

        Assert.Equal(["block5"], trained.Metadata.FineTune!.UnfrozenBlocks);
        Assert.Equal("block4_pool", trained.Metadata.FineTune.Boundary);
        var before = Initializers(original);
        var after = Initializers(ModelProto.Parser.ParseFrom(ModelArchive.ReadEmbeddedOnnx(zip)));
        Assert.Equal(before.Keys.Order(), after.Keys.Order());
        foreach (var (name, bytes) in before)
        {
            if (name.StartsWith("block5_", StringComparison.Ordinal)) continue;
            Assert.True(bytes.AsSpan().SequenceEqual(after[name]), $"{name} changed but lies below the freeze boundary");
        }
        Assert.Contains(before.Keys.Where(n => n.StartsWith("block5_", StringComparison.Ordinal)), n => !before[n].AsSpan().SequenceEqual(after[n]));
    }

    [Fact]
    public void UnfreezeByCountAndUnknownBlockName()
    {
        using var temp = new TestData.TempFolder();
        var (preset, composed) = Vgg(temp);
        var two = FreezeBoundary.Resolve(preset, composed.Graph, "2", FeaturizerGraphBuilder.BaseInputTensor(composed));
        Assert.Equal(["block4", "block5"], two.Unfrozen.Select(b => b.Name));
        Assert.Equal("block3_pool", two.Tensor);
        var e = Assert.Throws<ConvBaseException>(() => FreezeBoundary.Resolve(preset, composed.Graph, "block9", "x"));
        Assert.Contains("block1, block2, block3, block4, block5", e.Message);

        var resnet = ConvBaseRegistry.Get("resnet18");
        var resnetComposed = OnnxGraph.Load(FeaturizerGraphCache.GetOrBuild(resnet).Path);
        var stage4 = FreezeBoundary.Resolve(resnet, resnetComposed.Graph, "stage4", FeaturizerGraphBuilder.BaseInputTensor(resnetComposed));
        Assert.Equal("ReLU347_Output_0", stage4.Tensor);
        var top = FreezeBoundary.Resolve(resnet, resnetComposed.Graph, "1", FeaturizerGraphBuilder.BaseInputTensor(resnetComposed));
        Assert.Equal(stage4.Tensor, top.Tensor);
        Assert.Equal(["stage4"], top.Unfrozen.Select(b => b.Name));
    }

    [Theory]
    [InlineData(true, HeadKind.TorchSharpSoftmax)]
    [InlineData(true, HeadKind.TorchSharpMlp)]
    [InlineData(false, HeadKind.TorchSharpMlp)]
    [InlineData(false, HeadKind.TorchSharpSoftmax)]
    public void SavedZipPredictsWhatTorchSharpComputed(bool fineTune, HeadKind head)
    {
        using var temp = new TestData.TempFolder();
        var (preset, _) = Vgg(temp);
        using var trained = FineTune(preset, TestData.FashionSubset(3, 6, 3), Quick, fineTune, head: head);
        var zip = temp.File("m.zip");
        trained.Save(zip);
        Assert.Equal(fineTune ? "fine-tune" : "feature-extraction", trained.Metadata.Mode);
        Assert.Equal(ModelMetadata.HeadKinds.Of(head), trained.Metadata.Head.Kind);
        Assert.Null(trained.Metadata.Head.L2);
        Assert.Equal(1e-4, trained.Metadata.Head.WeightDecay);

        using var classifier = ImageClassifier.Load(zip);
        double maxDiff = 0;
        // The held-out estimate came from the model before the refit; the test split is the saved model's.
        Assert.Contains(trained.Reports, r => !r.OfSavedModel);
        foreach (var report in trained.Reports.Where(r => r.OfSavedModel))
            foreach (var image in report.Images)
            {
                var p = classifier.Predict(image.Path);
                maxDiff = Math.Max(maxDiff, Math.Abs(p.Scores.Single(s => s.Label == image.Actual).Score - image.ActualProbability));
                maxDiff = Math.Max(maxDiff, Math.Abs(p.Scores.Single(s => s.Label == image.Predicted).Score - image.PredictedProbability));
            }
        Assert.True(maxDiff <= 1e-4, $"TorchSharp vs zip: max abs diff of probabilities {maxDiff}");
    }

    [Fact]
    public void SameSeedAndThreadsGiveBitIdenticalWeights()
    {
        using var temp = new TestData.TempFolder();
        var (preset, _) = Vgg(temp);
        var dataset = TestData.FashionSubset(3, 6, 3);
        using var first = FineTune(preset, dataset, Quick);
        using var second = FineTune(preset, dataset, Quick);
        using var other = FineTune(preset, dataset, Quick, seed: 2);
        first.Save(temp.File("a.zip"));
        second.Save(temp.File("b.zip"));
        other.Save(temp.File("c.zip"));
        var a = ModelArchive.ReadEmbeddedOnnx(temp.File("a.zip"));
        Assert.Equal(a, ModelArchive.ReadEmbeddedOnnx(temp.File("b.zip")));
        Assert.NotEqual(a, ModelArchive.ReadEmbeddedOnnx(temp.File("c.zip")));
        Assert.Equal(first.Reports[0].Images.Select(i => i.ActualProbability), second.Reports[0].Images.Select(i => i.ActualProbability));
    }

    [Fact]
    public void RetrainStartsFromTheSavedWeights()
    {
        using var temp = new TestData.TempFolder();
        var (preset, _) = Vgg(temp);
        var dataset = TestData.FashionSubset(3, 6, 3);
        var zip = temp.File("m.zip");
        float[][] saved;
        using (var trained = FineTune(preset, dataset, Quick, head: HeadKind.TorchSharpMlp))
        {
            trained.Save(zip);
            using var c = ImageClassifier.Load(zip);
            saved = dataset.Test.Select(i => c.Predict(i.Path).Scores.OrderBy(s => s.Label).Select(s => s.Score).ToArray()).ToArray();
        }

        // Zero epochs: the continued model is the saved one. (A fine-tuned model's head phase is not repeated: no --head-epochs.)
        var continuing = new FineTuningOptions { AugmentedViews = 1, BatchSize = 8 };
        var learner = new ImageClassifierTrainer(new ImageClassifierTrainerOptions { FineTuning = continuing with { Epochs = 0 }, Threads = 2 });
        using (var same = learner.Retrain(zip, dataset))
        {
            same.Save(temp.File("same.zip"));
            using var c = ImageClassifier.Load(temp.File("same.zip"));
            var again = dataset.Test.Select(i => c.Predict(i.Path).Scores.OrderBy(s => s.Label).Select(s => s.Score).ToArray()).ToArray();
            for (int i = 0; i < saved.Length; i++)
                for (int j = 0; j < saved[i].Length; j++)
                    Assert.Equal(saved[i][j], again[i][j], tolerance: 1e-5);
        }

        // More data and epochs: the weights move on from there.
        var more = TestData.FashionSubset(3, 10, 3);
        var continued = new ImageClassifierTrainer(new ImageClassifierTrainerOptions { FineTuning = continuing with { Epochs = 2 }, Threads = 2 });
        using var next = continued.Retrain(zip, more);
        Assert.Contains("continuedFrom", next.Metadata.Training.Options.Keys);
        Assert.DoesNotContain(next.Metadata.FineTune!.Epochs, e => e.Phase == "head");
        next.Save(temp.File("next.zip"));
        Assert.NotEqual(ModelArchive.ReadEmbeddedOnnx(zip), ModelArchive.ReadEmbeddedOnnx(temp.File("next.zip")));

        var wrongClasses = TestData.FashionSubset(4, 6, 3);
        Assert.Throws<DatasetException>(() => continued.Retrain(zip, wrongClasses));
        // The model decides mode, head and blocks: asking for others is refused by name, before any work; so is a head phase.
        var other = new ImageClassifierTrainer(new ImageClassifierTrainerOptions { Head = HeadKind.TorchSharpSoftmax, Threads = 2 });
        Assert.Equal("Head", Assert.Throws<TrainingOptionsException>(() => other.Retrain(zip, "/no/such/data")).Option);
        var headPhase = new ImageClassifierTrainer(new ImageClassifierTrainerOptions { FineTuning = continuing with { HeadEpochs = 3 }, Threads = 2 });
        Assert.Equal("FineTuning.HeadEpochs", Assert.Throws<TrainingOptionsException>(() => headPhase.Retrain(zip, "/no/such/data")).Option);
    }

    [Fact]
    public void RetrainOfAHeadOnTheFrozenBaseTrainsItsHeadEpochsFromTheSavedWeights()
    {
        using var temp = new TestData.TempFolder();
        var (preset, _) = Vgg(temp);
        var dataset = TestData.FashionSubset(3, 6, 3);
        var zip = temp.File("mlp.zip");
        var recipe = new FineTuningOptions { HeadEpochs = 2, AugmentedViews = 1, BatchSize = 8 };
        using (var trained = FineTune(preset, dataset, recipe, fineTune: false, head: HeadKind.TorchSharpMlp))
            trained.Save(zip);
        var retrainer = new ImageClassifierTrainer(new ImageClassifierTrainerOptions { FineTuning = recipe, Threads = 2 });
        using var next = retrainer.Retrain(zip, TestData.FashionSubset(3, 10, 3));
        Assert.Equal(ModelMetadata.HeadKinds.TorchSharpMlp, next.Metadata.Head.Kind);
        Assert.Contains(next.Metadata.FineTune!.Epochs, e => e.Phase == "head");
        next.Save(temp.File("next.zip"));
        Assert.NotEqual(ModelArchive.ReadEmbeddedOnnx(zip), ModelArchive.ReadEmbeddedOnnx(temp.File("next.zip")));
        // What a fine-tuned model's continuation reads is no option here: refused by name.
        var epochs = new ImageClassifierTrainer(new ImageClassifierTrainerOptions { FineTuning = recipe with { Epochs = 3 }, Threads = 2 });
        Assert.Equal("FineTuning.Epochs", Assert.Throws<TrainingOptionsException>(() => epochs.Retrain(zip, "/no/such/data")).Option);
    }

    [Fact]
    public void StoppingDuringTheRefitSavesTheFinishedFirstFit()
    {
        using var temp = new TestData.TempFolder();
        var (preset, _) = Vgg(temp);
        using var stop = new CancellationTokenSource();
        var notes = new List<string>();
        // Ctrl+C the moment the refit starts: the first fit (on the data less the held-out share) had finished.
        var progress = new Collect(e =>
        {
            if (e is not ProgressNote n) return;
            notes.Add(n.Text);
            if (n.Text.StartsWith("refitting on all", StringComparison.Ordinal)) stop.Cancel();
        });
        using var trained = new ImageClassifierTrainer(new ImageClassifierTrainerOptions { ConvBase = preset, Mode = TrainingMode.FineTuning, Threads = 2, FineTuning = Quick })
            .Train(TestData.FashionSubset(3, 6, 3), progress, stop.Token);
        Assert.Contains(notes, n => n.StartsWith("stopped during the refit", StringComparison.Ordinal));
        var t = trained.Metadata.Training;
        Assert.False(t.Refit);
        Assert.Equal(18 - t.HeldOut, t.ImagesInModel);
        Assert.All(trained.Reports, r => Assert.True(r.OfSavedModel, r.Split));
        Assert.Contains(trained.Reports, r => r.Split == "validation (held out by the trainer)");
        trained.Save(temp.File("m.zip"));
        using var classifier = ImageClassifier.Load(temp.File("m.zip"));
        foreach (var image in trained.Reports.SelectMany(r => r.Images))
            Assert.Equal(image.PredictedProbability, classifier.Predict(image.Path).Probability, tolerance: 1e-4);
    }

    [Fact]
    public void ResNet18FineTunedZipLoadsInTheStockConsumerAndPredictsAsTheConsole()
    {
        using var temp = new TestData.TempFolder();
        var subset = TestData.FashionSubset(classes: 3, train: 6, test: 3);
        File.WriteAllLines(temp.File("data.csv"), ["path,label,split",
            .. subset.Train.Select(i => $"{i.Path},{i.Label},train"), .. subset.Test.Select(i => $"{i.Path},{i.Label},test")]);
        var zip = temp.File("ft.zip");

        var train = Processes.Run(Processes.CliDll, "train", temp.File("data.csv"), "--out", zip, "--mode", "fine-tune", "--unfreeze", "stage4",
            "--epochs", "1", "--head-epochs", "2", "--augment", "1", "--threads", "2");
        Assert.True(train.ExitCode == 0, train.StdOut + train.StdErr);
        Assert.Contains("fine-tune", train.StdOut);
        Assert.Contains("val acc", train.StdOut);

        var images = subset.Test.Select(i => i.Path).ToArray();
        var stock = Processes.Run(Processes.StockConsumerDll, [zip, .. images]);
        Assert.True(stock.ExitCode == 0, stock.StdErr);
        var cli = Processes.Run(Processes.CliDll, "predict", zip, temp.File("data.csv"), "--json", "--top", "3");
        Assert.True(cli.ExitCode == 0, cli.StdErr);
        var console = JsonDocument.Parse(cli.StdOut).RootElement.EnumerateArray().ToDictionary(e => e.GetProperty("path").GetString()!);
        foreach (var line in stock.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var s = JsonDocument.Parse(line).RootElement;
            var c = console[s.GetProperty("path").GetString()!];
            Assert.Equal(c.GetProperty("label").GetString(), s.GetProperty("label").GetString());
            foreach (var top in c.GetProperty("top").EnumerateArray())
                Assert.Equal(top.GetProperty("score").GetSingle(), s.GetProperty("scores").GetProperty(top.GetProperty("label").GetString()!).GetSingle(), tolerance: 1e-5);
        }
    }

    [Fact]
    public void ADivergingFineTuneEpochIsShownNotKeptAndTheBestHeadIsSaved()
    {
        using var temp = new TestData.TempFolder();
        var (preset, _) = Vgg(temp);
        var notes = new List<string>();
        // The block's rate 1e9 times the head's: the block's weights overflow within the first fine-tuning epoch.
        using var trained = new ImageClassifierTrainer(new ImageClassifierTrainerOptions
        {
            ConvBase = preset, Seed = 1, Mode = TrainingMode.FineTuning, Threads = 2, Refit = false,
            FineTuning = Quick with { Unfreeze = "block5", BlockLearningRateFactor = 1e9 },
        }).Train(TestData.FashionSubset(3, 6, 3), new Collect(e => { if (e is ProgressNote n) notes.Add(n.Text); }));

        var epochs = trained.Metadata.FineTune!.Epochs;
        Assert.Contains(epochs, e => e.Phase == "fine-tune" && !(double.IsFinite(e.TrainLoss) && double.IsFinite(e.ValidationLoss)));
        Assert.True(epochs.Count(e => e.Phase == "fine-tune") == 1, string.Join("; ", epochs)); // the phase stopped at the diverged epoch
        Assert.StartsWith("head", trained.Metadata.FineTune.BestEpoch);
        Assert.Contains(notes, n => n.StartsWith("training diverged in fine-tune epoch 1", StringComparison.Ordinal) && n.Contains("FineTuning.BlockLearningRateFactor"));

        var zip = temp.File("m.zip");
        trained.Save(zip);
        using var classifier = ImageClassifier.Load(zip);
        var scores = classifier.Predict(TestData.FashionSubset(3, 6, 3).Test[0].Path).Scores;
        Assert.All(scores, s => Assert.True(float.IsFinite(s.Score), $"{s.Label}: {s.Score}"));
    }

    [Fact]
    public void DivergingBeforeAnyEpochIsKeptFailsWithWhatToChange()
    {
        using var temp = new TestData.TempFolder();
        var (preset, _) = Vgg(temp);
        var learner = new ImageClassifierTrainer(new ImageClassifierTrainerOptions
        {
            ConvBase = preset, Head = HeadKind.TorchSharpMlp, Seed = 1, Threads = 2, Refit = false,
            FineTuning = new FineTuningOptions { HeadEpochs = 2, AugmentedViews = 1, BatchSize = 8, LearningRate = 1e30 },
        });
        var e = Assert.Throws<TrainingDivergedException>(() => learner.Train(TestData.FashionSubset(3, 6, 3)));
        Assert.Contains("training diverged in head epoch 1", e.Message);
        Assert.Contains("no model to save", e.Message);
        Assert.Contains("FineTuning.LearningRate", e.Message);
    }

    private sealed class Collect(Action<ProgressEvent> onEvent) : IProgress<ProgressEvent>
    {
        public void Report(ProgressEvent value) => onEvent(value);
    }
}

/// <summary>Ctrl+C during fine-tuning: the run stops cleanly and saves the best epoch so far.</summary>
public class InterruptTests
{
    private static bool DefaultSignalSupported()
    {
        try
        {
            using var probe = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("env", ["--default-signal=INT", "true"])
                { RedirectStandardError = true, UseShellExecute = false })!;
            probe.StandardError.ReadToEnd();
            probe.WaitForExit();
            return probe.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }

    /// <summary>The signal masks of a process (ignored, blocked, caught) where /proc shows them, for failure messages.</summary>
    private static string SignalMasks(string pid)
    {
        var status = $"/proc/{pid}/status";
        try
        {
            return File.Exists(status) ? string.Join(" ", File.ReadLines(status).Where(l => l.StartsWith("SigIgn") || l.StartsWith("SigBlk") || l.StartsWith("SigCgt"))) : "";
        }
        catch (IOException)
        {
            return "";
        }
    }

    [SkippableFact]
    public void CtrlCDuringFineTuningSavesTheBestEpochSoFar()
    {
        Skip.If(OperatingSystem.IsWindows(), "sends SIGINT with kill(2)");
        using var temp = new TestData.TempFolder();
        var model = Vgg16ShapedOnnx.WriteTorchvisionLike(temp.File("vgg.onnx"));
        var subset = TestData.FashionSubset(classes: 3, train: 6, test: 3);
        File.WriteAllLines(temp.File("data.csv"), ["path,label,split",
            .. subset.Train.Select(i => $"{i.Path},{i.Label},train"), .. subset.Test.Select(i => $"{i.Path},{i.Label},test")]);
        var zip = temp.File("m.zip");

        // A test run started as a background job has SIGINT ignored, and children inherit that: where coreutils' env can,
        // the child starts with SIGINT at its default again, as a terminal's foreground process has it.
        bool resetSignal = DefaultSignalSupported();
        var info = new System.Diagnostics.ProcessStartInfo(resetSignal ? "env" : "dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (resetSignal)
        {
            info.ArgumentList.Add("--default-signal=INT");
            info.ArgumentList.Add("dotnet");
        }
        // An epoch of this tiny graph takes ~4 ms: 500 of them could end before the signal arrives; 100000 cannot.
        foreach (var a in new[] { Processes.CliDll, "train", temp.File("data.csv"), "--out", zip, "--base", "vgg16-torchvision", "--base-model", model,
                     "--mode", "fine-tune", "--epochs", "100000", "--patience", "100000", "--head-epochs", "1", "--augment", "1", "--threads", "1" })
            info.ArgumentList.Add(a);
        info.Environment["NO_COLOR"] = "1";
        // Its own cache: the child always takes the same path (composing the graph, caching activations), whatever ran before.
        info.Environment["MLNETTRANSFER_CACHE"] = temp.File("cache");
        using var process = System.Diagnostics.Process.Start(info)!;
        var output = new System.Text.StringBuilder();
        var sawEpoch = new ManualResetEventSlim();
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (output) output.AppendLine(e.Data);
            if (e.Data.StartsWith("fine-tune ", StringComparison.Ordinal) && e.Data.Contains("/100000")) sawEpoch.Set();
        };
        process.BeginOutputReadLine();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            Assert.True(sawEpoch.Wait(TimeSpan.FromMinutes(3)), $"no fine-tuning epoch was reported (exited: {process.HasExited}): {output}");
            string masks = SignalMasks(process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Assert.True(Processes.SendSignal(process.Id, Processes.SigInt) == 0, $"kill(SIGINT) failed: errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}; the child had exited: {process.HasExited}; {output}");
            Assert.True(process.WaitForExit(TimeSpan.FromMinutes(2)),
                $"the run did not stop after Ctrl+C (SIGINT reset for the child: {resetSignal}; the child's {masks}; this process's {SignalMasks("self")})");
            // The timed wait does not wait for the redirected output to be read to its end; this one does.
            process.WaitForExit();
        }
        finally
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }
        Assert.True(process.ExitCode == 0, output + stderr.Result);
        Assert.True(output.ToString().Contains("stopped by the user"), output + stderr.Result);
        var metadata = ModelArchive.ReadMetadata(zip)!;
        Assert.True(metadata.FineTune!.StoppedByUser);
        Assert.True(metadata.FineTune.Epochs.Count(e => e.Phase == "fine-tune") < 100000);
        using var classifier = ImageClassifier.Load(zip);
        Assert.Equal(subset.Classes, classifier.Classes);
    }
}

/// <summary>lr-find suggests a rate at which training does improve, and the console saves the plot.</summary>
public class LearningRateFinderTests
{
    [Fact]
    public void SuggestedRateIsWhereTheLossFallsAndTrainingImproves()
    {
        // Real features (the embedded ResNet18; a seeded VGG-shaped graph's barely separate the classes, so its loss has
        // no valley to find), a head on the frozen base: cheap.
        var dataset = TestData.FashionSubset(3, 10, 3);
        var recipe = new FineTuningOptions { AugmentedViews = 2, BatchSize = 8 };
        var learner = new ImageClassifierTrainer(new ImageClassifierTrainerOptions { FineTuning = recipe, Threads = 2 });

        var sweep = learner.FindLearningRate(dataset, new LearningRateRange { Start = 1e-5, End = 100, Steps = 80 });

        string Points() => string.Join(" ", sweep.Points.Select(p => FormattableString.Invariant($"{p.LearningRate:G2}:{p.SmoothedLoss:F3}")));
        Assert.True(sweep.Suggested is >= 1e-5 and <= 100, $"suggested {sweep.Suggested}: {Points()}");
        Assert.True(sweep.Suggested < sweep.Points[^1].LearningRate);
        var near = sweep.Points.MinBy(p => Math.Abs(Math.Log(p.LearningRate / sweep.Suggested)))!;
        Assert.True(near.SmoothedLoss < sweep.Points[2].SmoothedLoss, $"the smoothed loss is not falling at the suggestion {sweep.Suggested}: {Points()}");

        // Training the head at the suggested rate lowers the training loss from epoch to epoch.
        using var trained = new ImageClassifierTrainer(new ImageClassifierTrainerOptions
        {
            Head = HeadKind.TorchSharpSoftmax, Threads = 2, Refit = false, FineTuning = recipe with { LearningRate = sweep.Suggested, HeadEpochs = 4 },
        }).Train(dataset);
        var epochs = trained.Metadata.FineTune!.Epochs;
        Assert.True(epochs[^1].TrainLoss < epochs[0].TrainLoss, $"train loss {epochs[0].TrainLoss} -> {epochs[^1].TrainLoss}");
    }

    [Fact]
    public void ConsoleSavesThePlot()
    {
        using var temp = new TestData.TempFolder();
        var model = Vgg16ShapedOnnx.WriteTorchvisionLike(temp.File("vgg.onnx"));
        var subset = TestData.FashionSubset(classes: 3, train: 6, test: 3);
        File.WriteAllLines(temp.File("data.csv"), ["path,label,split", .. subset.Train.Select(i => $"{i.Path},{i.Label},train")]);
        var run = Processes.Run(Processes.CliDll, "lr-find", temp.File("data.csv"), "--base", "vgg16-torchvision", "--base-model", model,
            "--head", "torch-mlp", "--augment", "1", "--steps", "30", "--plot", temp.File("lr.png"), "--threads", "2");
        Assert.True(run.ExitCode == 0, run.StdOut + run.StdErr);
        Assert.Contains("Suggested learning rate", run.StdOut);
        Assert.True(new FileInfo(temp.File("lr.png")).Length > 5000);
    }
}

public class LabelSmoothingTests
{
    [Fact]
    public void SmoothingTheTargetsMakesTheHeadLessSureAndIsRecorded()
    {
        var dataset = TestData.FashionSubset(3, 10, 3);
        TrainedImageClassifier Train(double smoothing) => new ImageClassifierTrainer(new ImageClassifierTrainerOptions
        {
            Head = HeadKind.TorchSharpSoftmax, Threads = 2, Refit = false,
            FineTuning = new FineTuningOptions { AugmentedViews = 1, BatchSize = 8, HeadEpochs = 8, LabelSmoothing = smoothing },
        }).Train(dataset);
        using var plain = Train(0);
        using var smoothed = Train(0.4);
        // The loss pulls every target 0.4 of the way to uniform, so the head stops short of certainty on its own images.
        double Sure(TrainedImageClassifier m) => m.Reports.Single(r => r.Split == "test").Images.Average(i => i.PredictedProbability);
        Assert.True(Sure(smoothed) < Sure(plain) - 0.02, $"mean predicted probability: smoothed {Sure(smoothed):F3}, plain {Sure(plain):F3}");
        Assert.Equal("0.4", smoothed.Metadata.Training.Options["labelSmoothing"]);
        Assert.False(plain.Metadata.Training.Options.ContainsKey("labelSmoothing"));

        var refused = Assert.Throws<TrainingOptionsException>(() => new ImageClassifierTrainerOptions { FineTuning = new FineTuningOptions { LabelSmoothing = 1 } }.Validate());
        Assert.Equal("FineTuning.LabelSmoothing", refused.Option);
        // The L-BFGS head has no such loss: set there, it is a mistake the user could not see.
        var unused = Assert.Throws<TrainingOptionsException>(() => new ImageClassifierTrainerOptions
        {
            Mode = TrainingMode.FeatureExtraction, FineTuning = new FineTuningOptions { LabelSmoothing = 0.1 },
        }.Validate());
        Assert.StartsWith("FineTuning", unused.Option);
    }
}
