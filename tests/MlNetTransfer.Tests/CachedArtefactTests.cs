using MlNetTransfer.Featurization;
using MlNetTransfer.Tests.Fixtures;
using MlNetTransfer.TorchSharp.Learning;
using MlNetTransfer.Training;
using TorchSharp;

namespace MlNetTransfer.Tests;

/// <summary>
/// Every cached artefact is verified before use, through the trainer: a damaged composed graph is rebuilt with a warning
/// and the model trained and saved is the one a clean run makes; a damaged checkpoint is never resumed from.
/// </summary>
public sealed class CachedArtefactTests
{
    [Fact]
    public void ADamagedCachedGraphIsRebuiltAndTheSavedModelScoresAsACleanRunDoes()
    {
        using var temp = new TestData.TempFolder();
        var dataset = TestData.FashionSubset(classes: 3, train: 6, test: 3);
        var options = new ImageClassifierTrainerOptions { Featurizer = new FeaturizerOptions { CacheRoot = temp.File("cache") } };
        using (var clean = new ImageClassifierTrainer(options).Train(dataset))
            clean.Save(temp.File("clean.zip"));

        // Bytes flipped inside the weights of the cached graph (the file the saved zip would embed).
        var graph = Assert.Single(Directory.GetFiles(temp.File("cache/graphs"), "*.onnx"));
        var bytes = File.ReadAllBytes(graph);
        for (int i = 0; i < 64; i++)
            bytes[bytes.Length / 2 + i * 997] ^= 0x5a;
        File.WriteAllBytes(graph, bytes);

        var notes = new List<string>();
        using (var again = new ImageClassifierTrainer(options).Train(dataset, new ActivationStoreTests.Notes(notes)))
            again.Save(temp.File("again.zip"));
        Assert.Contains(notes, n => n.Contains(graph) && n.Contains("damaged") && n.Contains("rebuilt"));
        var images = dataset.Test;
        Assert.Equal(ActivationStoreTests.Scores(temp.File("clean.zip"), images), ActivationStoreTests.Scores(temp.File("again.zip"), images));

        // An edited info file is rebuilt from too, not a failure of every later run.
        File.WriteAllText(graph + ".info.json", "{ \"Key\": \"edited\" }");
        notes.Clear();
        using (var third = new ImageClassifierTrainer(options).Train(dataset, new ActivationStoreTests.Notes(notes)))
            third.Save(temp.File("third.zip"));
        Assert.Contains(notes, n => n.Contains(graph) && n.Contains("rebuilt"));
        Assert.Equal(ActivationStoreTests.Scores(temp.File("clean.zip"), images), ActivationStoreTests.Scores(temp.File("third.zip"), images));
    }

    [Fact]
    public void ACheckpointWithOneFlippedByteIsNotWhole()
    {
        using var temp = new TestData.TempFolder();
        using var head = torch.nn.Linear(4, 2);
        var checkpoint = new TrainingCheckpoint(temp.File("run.ckpt"));
        var state = new CheckpointState { Fingerprint = "f", Phase = "head", Epoch = 1, Step = 3, BestLoss = 0.5, SinceBetterLoss = 0, History = [] };
        checkpoint.Save(state, null, head, null, null, null);
        Assert.True(checkpoint.IsWhole);
        Assert.Equal(1, checkpoint.ReadState("f")!.Epoch);

        var bytes = File.ReadAllBytes(checkpoint.Path);
        bytes[bytes.Length - 20] ^= 0x01; // inside the head's weights
        File.WriteAllBytes(checkpoint.Path, bytes);
        Assert.False(checkpoint.IsWhole);
        File.WriteAllBytes(checkpoint.Path, bytes.AsSpan(0, bytes.Length / 2).ToArray());
        Assert.False(checkpoint.IsWhole);
    }
}
