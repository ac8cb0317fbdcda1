using System.Text;
using System.Text.Json;
using MlNetTransfer.IO;
using MlNetTransfer.Training.Backends;
using TorchSharp;
using static TorchSharp.torch;

namespace MlNetTransfer.TorchSharp.Learning;

/// <summary>Where a training run stands after an epoch: what the next epoch needs to continue exactly.</summary>
internal sealed record CheckpointState
{
    public required string Fingerprint { get; init; }
    public required string Phase { get; init; }
    public required int Epoch { get; init; }
    public required int Step { get; init; }
    public required double BestLoss { get; init; }
    public required int SinceBetterLoss { get; init; }
    /// <summary>The phase of <see cref="Epoch"/> is done (its last epoch, an early stop, or the epoch a refit keeps).</summary>
    public bool PhaseDone { get; init; }

    /// <summary>The head epoch fine-tuning starts from (the best head epoch).</summary>
    public int? HeadEpoch { get; init; }
    public required List<EpochRecord> History { get; init; }
    public EpochRecord? Best { get; init; }
}

/// <summary>
/// One file per run, rewritten atomically after every epoch: the state, the current weights, the optimizer's state and
/// the best epoch's weights, then a checksum of all of it (a damaged checkpoint is never resumed from). A run killed at any point resumes from the last whole epoch (<c>train --resume</c>) and,
/// with the same seed and threads, ends with the weights an uninterrupted run would have.
/// </summary>
internal sealed class TrainingCheckpoint(string path)
{
    // A refit has no validation figures (NaN), and "no best loss yet" is double.MaxValue.
    private static readonly JsonSerializerOptions Json = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public string Path { get; } = System.IO.Path.GetFullPath(path);

    public bool Exists => File.Exists(Path);

    internal void Save(CheckpointState state, nn.Module? suffix, nn.Module head, optim.Optimizer? optimizer,
        IReadOnlyDictionary<string, Tensor>? bestSuffix, IReadOnlyDictionary<string, Tensor>? bestHead)
    {
        AtomicFile.Write(Path, stream =>
        {
            using var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
            writer.Write(JsonSerializer.Serialize(state, Json));
            writer.Write(suffix is not null);
            suffix?.save(writer);
            head.save(writer);
            var optimizerState = new MemoryStream();
            if (optimizer is global::TorchSharp.Modules.OptimizerHelper helper)
                using (var optimizerWriter = new BinaryWriter(optimizerState, Encoding.UTF8, leaveOpen: true))
                    helper.save_state_dict(optimizerWriter);
            writer.Write((int)optimizerState.Length);
            writer.Write(optimizerState.ToArray());
            WriteTensors(writer, bestSuffix);
            WriteTensors(writer, bestHead);
            writer.Flush();
            ChecksumTrailer.Append(stream);
        });
    }

    /// <summary>The file is whole: its checksum matches its content (checked before a resume reads anything of it).</summary>
    internal bool IsWhole => ChecksumTrailer.Matches(Path);

    /// <summary>The saved state, or null if there is none; a checkpoint of another run is a clear error.</summary>
    internal CheckpointState? ReadState(string fingerprint)
    {
        if (!Exists)
            return null;
        using var reader = new BinaryReader(File.OpenRead(Path), Encoding.UTF8);
        var state = JsonSerializer.Deserialize<CheckpointState>(reader.ReadString(), Json)
                    ?? throw new InvalidDataException($"{Path}: damaged checkpoint");
        if (state.Fingerprint != fingerprint)
            throw new InvalidOperationException($"{Path} was saved by a run with other data or options; delete it, or run without Resume.");
        return state;
    }

    /// <summary>Loads the weights into the modules; returns the optimizer's saved state (for the optimizer of that phase) and the best weights.</summary>
    internal byte[] Restore(nn.Module? suffix, nn.Module head, out Dictionary<string, Tensor>? bestSuffix, out Dictionary<string, Tensor>? bestHead)
    {
        using var reader = new BinaryReader(File.OpenRead(Path), Encoding.UTF8);
        reader.ReadString();
        if (reader.ReadBoolean())
            suffix!.load(reader);
        head.load(reader);
        var optimizerState = reader.ReadBytes(reader.ReadInt32());
        bestSuffix = ReadTensors(reader);
        bestHead = ReadTensors(reader);
        return optimizerState;
    }

    /// <summary>Gives an optimizer the state saved with the checkpoint (momentum and the like).</summary>
    internal static void LoadOptimizer(optim.Optimizer optimizer, byte[] state)
    {
        if (state.Length == 0)
            return;
        using var reader = new BinaryReader(new MemoryStream(state), Encoding.UTF8);
        ((global::TorchSharp.Modules.OptimizerHelper)optimizer).load_state_dict(reader);
    }

    private static void WriteTensors(BinaryWriter writer, IReadOnlyDictionary<string, Tensor>? tensors)
    {
        writer.Write(tensors?.Count ?? -1);
        foreach (var (name, value) in tensors ?? new Dictionary<string, Tensor>())
        {
            writer.Write(name);
            value.Save(writer);
        }
    }

    private static Dictionary<string, Tensor>? ReadTensors(BinaryReader reader)
    {
        int count = reader.ReadInt32();
        if (count < 0)
            return null;
        var tensors = new Dictionary<string, Tensor>();
        for (int i = 0; i < count; i++)
        {
            var name = reader.ReadString();
            tensors[name] = global::TorchSharp.TensorExtensionMethods.Load(reader).DetachFromDisposeScope();
        }
        return tensors;
    }
}
