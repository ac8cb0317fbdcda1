using MlNetTransfer.Training.Backends;
using static TorchSharp.torch;

namespace MlNetTransfer.TorchSharp.Learning.Callbacks;

/// <summary>
/// Keeps a copy of the weights of the best epoch so far (validation accuracy, then loss; the head-only epochs count
/// too), or, for a refit on all the data, of the epoch chosen before. <see cref="Restore"/> puts them back.
/// </summary>
internal sealed class BestEpochKeeper(nn.Module? suffix, nn.Module head) : Callback, IDisposable
{
    private Dictionary<string, Tensor>? _suffix;
    private Dictionary<string, Tensor>? _head;

    /// <summary>Keep exactly this epoch (a refit); null keeps the best on validation.</summary>
    public (string Phase, int Epoch)? Keep { get; set; }

    public EpochRecord? Best { get; private set; }

    public IReadOnlyDictionary<string, Tensor>? SuffixSnapshot => _suffix;

    public IReadOnlyDictionary<string, Tensor>? HeadSnapshot => _head;

    public override void AfterEpoch(FitContext context)
    {
        if (!context.Dropped)
            context.IsBest = Offer(context.Record!);
    }

    /// <summary>Takes over the best epoch of a checkpoint.</summary>
    public void Load(EpochRecord? best, Dictionary<string, Tensor>? suffixSnapshot, Dictionary<string, Tensor>? headSnapshot)
    {
        Dispose();
        Best = best;
        _suffix = suffixSnapshot;
        _head = headSnapshot;
    }

    private bool Offer(EpochRecord record)
    {
        if (Keep is { } k && (record.Phase != k.Phase || record.Epoch != k.Epoch))
            return false;
        if (Keep is null && Best is not null && (record.ValidationAccuracy < Best.ValidationAccuracy ||
                                                (record.ValidationAccuracy == Best.ValidationAccuracy && record.ValidationLoss >= Best.ValidationLoss)))
            return false;
        Best = record;
        Dispose();
        _suffix = suffix is null ? null : Snapshot(suffix.state_dict());
        _head = Snapshot(head.state_dict());
        return true;
    }

    public void Restore()
    {
        if (_head is null) return;
        using var _ = no_grad();
        Copy(_head, head.state_dict());
        if (_suffix is not null) Copy(_suffix, suffix!.state_dict());
    }

    private static Dictionary<string, Tensor> Snapshot(Dictionary<string, Tensor> state) =>
        state.ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone().DetachFromDisposeScope());

    private static void Copy(Dictionary<string, Tensor> from, Dictionary<string, Tensor> to)
    {
        foreach (var (name, value) in from)
            to[name].copy_(value);
    }

    public void Dispose()
    {
        foreach (var t in (_suffix?.Values.AsEnumerable() ?? []).Concat(_head?.Values.AsEnumerable() ?? []))
            t.Dispose();
        _suffix = _head = null;
    }
}
