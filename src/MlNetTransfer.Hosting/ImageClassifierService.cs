using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.ML.Data;
using MlNetTransfer.Inference;

namespace MlNetTransfer.Hosting;

/// <summary>
/// A model zip served to many threads at once: a pool of prediction engines over one loaded model
/// (<see cref="ImageClassifierPool"/>: every image through the library's reader, with training's limits and EXIF
/// orientation), registered as a singleton by
/// <see cref="ImageClassifierServiceCollectionExtensions.AddImageClassifier(Microsoft.Extensions.DependencyInjection.IServiceCollection, Microsoft.Extensions.Configuration.IConfiguration)"/>.
/// With <see cref="ImageClassifierOptions.ReloadOnChange"/> it watches the file: when it is replaced, the new model is
/// loaded beside the old, new requests go to it, requests in flight finish on the old one, and the old one is disposed
/// after them (its unpacked ONNX files deleted). A replacement that does not load leaves the old model serving, logged
/// and reported by the health check as degraded.
/// </summary>
public sealed partial class ImageClassifierService : IDisposable
{
    private readonly ImageClassifierOptions _options;
    private readonly ILogger _log;
    private readonly string _path;
    private readonly Lock _loading = new();
    private readonly FileSystemWatcher? _watcher;
    private readonly AutoResetEvent? _fileChanged;
    private ModelGeneration? _current;
    private int _generations;
    private int _retiredUndisposed;
    private volatile bool _disposed;

    /// <summary>Reads the options (the model path is made full here); the model is loaded on first use or by the host at start.</summary>
    /// <param name="options">What to serve, and how.</param>
    /// <param name="log">Where loads, reloads and failed reloads are logged; none when the container has no logging.</param>
    public ImageClassifierService(IOptions<ImageClassifierOptions> options, ILogger<ImageClassifierService>? log = null)
    {
        _options = options.Value;
        _log = log ?? (ILogger)Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
        if (string.IsNullOrWhiteSpace(_options.ModelPath))
            throw new ArgumentException("ImageClassifierOptions.ModelPath is not set: name the model zip to serve.", nameof(options));
        _path = Path.GetFullPath(_options.ModelPath);
        if (_options.ReloadOnChange)
        {
            // Reloads run on a thread of their own, not the thread pool: a server whose pool threads are all busy
            // predicting would otherwise keep serving the old model until the pool grows.
            _fileChanged = new AutoResetEvent(false);
            new Thread(WatchForChanges) { IsBackground = true, Name = "ImageClassifier reload" }.Start();
            var folder = Path.GetDirectoryName(_path)!;
            if (Directory.Exists(folder))
            {
                // The whole folder, not a filter on the name: a temp file renamed over the model raises Renamed with
                // the model's name as the new name, which a name filter is not sure to match on every OS.
                _watcher = new FileSystemWatcher(folder)
                {
                    NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.CreationTime,
                };
                _watcher.Changed += OnFileEvent;
                _watcher.Created += OnFileEvent;
                _watcher.Renamed += OnFileEvent;
                _watcher.Error += (_, e) => { LogWatcherError(_log, e.GetException()); ScheduleReload(); };
                _watcher.EnableRaisingEvents = true;
            }
        }
    }

    /// <summary>The model zip served (full path).</summary>
    public string ModelPath => _path;

    /// <summary>The model served now; the first read loads it (throws <see cref="ModelLoadException"/> for a file that is not a model).</summary>
    public ServedModelInfo Model => Current().Info;

    /// <summary>The served model's class names in score order.</summary>
    public IReadOnlyList<string> Classes => Model.Classes;

    /// <summary>
    /// Why the last replacement of the file did not load (the old model still serves), or null when the served model is
    /// the file's latest content.
    /// </summary>
    public string? ReloadFailure { get; private set; }

    /// <summary>As <see cref="ImageClassifierPool.PredictAsync(byte[], string?, CancellationToken)"/>: an image file's bytes, EXIF orientation applied.</summary>
    /// <exception cref="ImageReadException">The image cannot be used; its <see cref="ImageReadException.Reason"/> says why.</exception>
    public Task<ImagePrediction> PredictAsync(byte[] image, string? name = null, CancellationToken cancellationToken = default) =>
        RunAsync(pool => pool.PredictAsync(image, name, cancellationToken));

    /// <summary>As <see cref="ImageClassifierPool.PredictAsync(Stream, string?, CancellationToken)"/>: read once an engine is free, never past the size limit.</summary>
    public Task<ImagePrediction> PredictAsync(Stream image, string? name = null, CancellationToken cancellationToken = default) =>
        RunAsync(pool => pool.PredictAsync(image, name, cancellationToken));

    /// <summary>As <see cref="ImageClassifierPool.PredictAsync(MLImage, string?, CancellationToken)"/>: a decoded image, taken as is (upright).</summary>
    public Task<ImagePrediction> PredictAsync(MLImage image, string? name = null, CancellationToken cancellationToken = default) =>
        RunAsync(pool => pool.PredictAsync(image, name, cancellationToken));

    /// <summary>As <see cref="ImageClassifierPool.PredictAsync(string, CancellationToken)"/>: an image file.</summary>
    public Task<ImagePrediction> PredictAsync(string imagePath, CancellationToken cancellationToken = default) =>
        RunAsync(pool => pool.PredictAsync(imagePath, cancellationToken));

    /// <summary>As <see cref="PredictAsync(byte[], string?, CancellationToken)"/>, waiting for a free engine on this thread.</summary>
    public ImagePrediction Predict(byte[] image, string? name = null) => Run(pool => pool.Predict(image, name));

    /// <summary>As <see cref="PredictAsync(string, CancellationToken)"/>, waiting for a free engine on this thread.</summary>
    public ImagePrediction Predict(string imagePath) => Run(pool => pool.Predict(imagePath));

    /// <summary>
    /// Loads the file now if its content differs from the served model's (the watcher does this by itself; this is for
    /// apps that turn <see cref="ImageClassifierOptions.ReloadOnChange"/> off or replace the file where no watcher sees
    /// it). True when a new model now serves; false when the content is the same. A file that does not load throws
    /// <see cref="ModelLoadException"/> and leaves the old model serving.
    /// </summary>
    public bool Reload()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        lock (_loading)
        {
            if (_current is null)
            {
                Current();
                return true;
            }
            string sha;
            try
            {
                sha = Sha256(_path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw Failed(new ModelLoadException($"{_path}: cannot be read: {e.Message}", e));
            }
            if (sha == _current.Info.Sha256)
            {
                ReloadFailure = null;
                return false;
            }
            ModelGeneration next;
            try
            {
                next = LoadGeneration(sha);
            }
            catch (Exception e)
            {
                throw Failed(e as ModelLoadException ?? new ModelLoadException($"{_path}: cannot be loaded: {e.Message}", e));
            }
            var old = Interlocked.Exchange(ref _current, next);
            ReloadFailure = null;
            Interlocked.Increment(ref _retiredUndisposed);
            int inFlight = old.Retire();
            LogReloaded(_log, next.Info.Generation, _path, next.Info.Sha256[..12], next.Info.Classes.Count, old.Info.Generation, inFlight);
            return true;
        }
    }

    /// <summary>Generations replaced by a newer one whose last requests have not finished yet (so not disposed yet).</summary>
    internal int RetiredGenerationsInFlight => Volatile.Read(ref _retiredUndisposed);

    private ModelLoadException Failed(Exception e)
    {
        ReloadFailure = e.Message;
        LogReloadFailed(_log, _path, e.Message, _current!.Info.Generation);
        return e as ModelLoadException ?? new ModelLoadException(e.Message, e);
    }

    private ModelGeneration Current()
    {
        var current = Volatile.Read(ref _current);
        if (current is not null)
            return current;
        ObjectDisposedException.ThrowIf(_disposed, this);
        lock (_loading)
        {
            if (_current is null)
            {
                string sha;
                try
                {
                    sha = Sha256(_path);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw new ModelLoadException($"{_path}: cannot be read: {e.Message}", e);
                }
                Volatile.Write(ref _current, LoadGeneration(sha));
                LogLoaded(_log, _path, _current.Info.Sha256[..12], _current.Info.Classes.Count, string.Join(", ", _current.Info.Classes));
            }
            return _current;
        }
    }

    private ModelGeneration LoadGeneration(string sha)
    {
        var engines = _options.MaxEngines > 0 ? _options.MaxEngines : Environment.ProcessorCount;
        var pool = new ImageClassifierPool(_path, engines, _options.Validation);
        try
        {
            // Loads the model now, so a file that is not a model fails here and never reaches a request.
            var classes = pool.Classes;
            var info = new ServedModelInfo(_path, Interlocked.Increment(ref _generations), sha, DateTimeOffset.UtcNow, classes);
            return new ModelGeneration(pool, info, OnDisposed);
        }
        catch
        {
            pool.Dispose();
            throw;
        }
    }

    private void OnDisposed(ModelGeneration generation)
    {
        if (!ReferenceEquals(generation, Volatile.Read(ref _current)))
        {
            Interlocked.Decrement(ref _retiredUndisposed);
            LogDisposed(_log, generation.Info.Generation);
            if (_options.ReturnMemoryAfterReload && !_disposed)
                ThreadPool.UnsafeQueueUserWorkItem(_ => ProcessMemory.Return(), null);
        }
    }

    private async Task<ImagePrediction> RunAsync(Func<ImageClassifierPool, Task<ImagePrediction>> predict)
    {
        var generation = Enter();
        try
        {
            return await predict(generation.Pool).ConfigureAwait(false);
        }
        finally
        {
            generation.Exit();
        }
    }

    private ImagePrediction Run(Func<ImageClassifierPool, ImagePrediction> predict)
    {
        var generation = Enter();
        try
        {
            return predict(generation.Pool);
        }
        finally
        {
            generation.Exit();
        }
    }

    /// <summary>The current generation, entered: a generation disposed between the read and the entry was replaced, so read again.</summary>
    private ModelGeneration Enter()
    {
        while (true)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var generation = Current();
            if (generation.TryEnter())
                return generation;
        }
    }

    private void OnFileEvent(object sender, FileSystemEventArgs e)
    {
        if (SamePath(e.FullPath, _path))
            ScheduleReload();
    }

    private void ScheduleReload()
    {
        if (_disposed)
            return;
        try
        {
            _fileChanged?.Set();
        }
        catch (ObjectDisposedException)
        {
            // Disposed meanwhile: nothing to reload.
        }
    }

    /// <summary>After a change, waits until the file has stayed unchanged for <see cref="ImageClassifierOptions.ReloadDelay"/>, then reloads.</summary>
    private void WatchForChanges()
    {
        var changed = _fileChanged!;
        try
        {
            while (true)
            {
                changed.WaitOne();
                while (!_disposed && changed.WaitOne(_options.ReloadDelay))
                {
                }
                if (_disposed)
                    return;
                ReloadQuietly();
            }
        }
        catch (ObjectDisposedException)
        {
        }
        finally
        {
            changed.Dispose();
        }
    }

    /// <summary>The watcher's reload: a failure is logged and kept for the health check, never thrown on the reload thread.</summary>
    private void ReloadQuietly()
    {
        // Not skipped while nothing is loaded yet: a first load in progress read the file before this change, so
        // Reload waits for it and then compares the file with what it loaded.
        if (_disposed)
            return;
        try
        {
            Reload();
        }
        catch (ModelLoadException)
        {
            // Logged by Reload; the next change of the file tries again.
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private static bool SamePath(string a, string b) =>
        string.Equals(Path.GetFullPath(a), b, OperatingSystem.IsWindows() || OperatingSystem.IsMacOS() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal);

    private static string Sha256(string path)
    {
        using var file = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(file));
    }

    /// <summary>Stops watching and disposes the served model once its requests in flight have finished.</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        _watcher?.Dispose();
        // Wakes the reload thread, which sees _disposed, stops, and disposes the event.
        try
        {
            _fileChanged?.Set();
        }
        catch (ObjectDisposedException)
        {
        }
        lock (_loading)
            _current?.Retire();
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Serving {Path} (sha256 {Sha}..., {Count} classes: {Classes})")]
    private static partial void LogLoaded(ILogger log, string path, string sha, int count, string classes);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information,
        Message = "Reloaded: generation {Generation} serves {Path} (sha256 {Sha}..., {Count} classes); generation {Old} is disposed after its {InFlight} requests in flight")]
    private static partial void LogReloaded(ILogger log, int generation, string path, string sha, int count, int old, int inFlight);

    [LoggerMessage(EventId = 3, Level = LogLevel.Warning, Message = "The replaced model {Path} did not load ({Reason}); generation {Generation} still serves")]
    private static partial void LogReloadFailed(ILogger log, string path, string reason, int generation);

    [LoggerMessage(EventId = 4, Level = LogLevel.Debug, Message = "Generation {Generation} disposed after its last request")]
    private static partial void LogDisposed(ILogger log, int generation);

    [LoggerMessage(EventId = 5, Level = LogLevel.Warning, Message = "The model file's watcher failed; checking the file now")]
    private static partial void LogWatcherError(ILogger log, Exception error);
}
