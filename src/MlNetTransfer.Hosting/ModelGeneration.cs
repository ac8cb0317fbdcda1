using MlNetTransfer.Inference;

namespace MlNetTransfer.Hosting;

/// <summary>
/// One loaded model and its engines. Requests enter and exit it; once a newer generation has replaced it (retired), the
/// last request to exit disposes it, so requests in flight finish on the model they started with.
/// </summary>
internal sealed class ModelGeneration(ImageClassifierPool pool, ServedModelInfo info, Action<ModelGeneration> disposed)
{
    private readonly Lock _gate = new();
    private int _users;
    private bool _retired;
    private bool _disposed;

    public ImageClassifierPool Pool => pool;

    public ServedModelInfo Info => info;

    /// <summary>False when it has been disposed (the caller reads the current generation again).</summary>
    public bool TryEnter()
    {
        lock (_gate)
        {
            if (_disposed)
                return false;
            _users++;
            return true;
        }
    }

    public void Exit()
    {
        lock (_gate)
        {
            _users--;
            if (!_retired || _users > 0 || _disposed)
                return;
            _disposed = true;
        }
        Dispose();
    }

    /// <summary>No new requests will come (a newer generation serves them): disposed now, or by its last request.</summary>
    /// <returns>The requests still in flight on it.</returns>
    public int Retire()
    {
        lock (_gate)
        {
            _retired = true;
            if (_users > 0 || _disposed)
                return _users;
            _disposed = true;
        }
        Dispose();
        return 0;
    }

    private void Dispose()
    {
        // Deletes the ONNX files ML.NET unpacked to the temp folder.
        pool.Dispose();
        disposed(this);
    }
}
