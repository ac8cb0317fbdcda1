using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace MlNetTransfer.Featurization;

/// <summary>
/// Dedicated threads that prepare images (read, decode, resize) for the featurizer. They run at a lower scheduling
/// priority where the OS allows it (Linux: nice +<see cref="Niceness"/>), so that ONNX Runtime's threads, which do
/// ~90 % of the work, are not preempted in the middle of a parallel step; the decoders fill the gaps.
/// </summary>
internal sealed class DecodeWorkers : IDisposable
{
    /// <summary>How much lower the decoders' priority is (Linux nice value added).</summary>
    public const int Niceness = 10;

    private readonly BlockingCollection<Action> _work = new();
    private readonly Thread[] _threads;

    public DecodeWorkers(int count, bool lowerPriority)
    {
        _threads = Enumerable.Range(0, Math.Max(1, count)).Select(i => new Thread(() => Loop(lowerPriority))
        {
            IsBackground = true,
            Name = $"mlnt-decode-{i}",
        }).ToArray();
        foreach (var thread in _threads)
            thread.Start();
    }

    /// <summary>Threads.</summary>
    public int Count => _threads.Length;

    /// <summary>Runs <paramref name="prepare"/> on a worker; the task completes with its result.</summary>
    public Task<T> Run<T>(Func<T> prepare)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        _work.Add(() =>
        {
            try
            {
                done.SetResult(prepare());
            }
            catch (Exception e)
            {
                done.SetException(e);
            }
        });
        return done.Task;
    }

    private void Loop(bool lowerPriority)
    {
        if (lowerPriority)
            LowerThisThreadsPriority();
        foreach (var action in _work.GetConsumingEnumerable())
            action();
    }

    private static void LowerThisThreadsPriority()
    {
        // .NET's Thread.Priority does nothing on Linux; a thread's nice value is its own there (setpriority on its tid).
        // Raising one's own nice value needs no privilege. Elsewhere the default priority stays.
        if (!OperatingSystem.IsLinux())
            return;
        try
        {
            int tid = gettid();
            setpriority(0 /* PRIO_PROCESS: a tid on Linux */, tid, Niceness);
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            // An older C library: the decoders run at the normal priority.
        }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int gettid();

    [DllImport("libc", SetLastError = true)]
    private static extern int setpriority(int which, int who, int prio);

    public void Dispose()
    {
        _work.CompleteAdding();
        foreach (var thread in _threads)
            thread.Join();
        _work.Dispose();
    }
}
