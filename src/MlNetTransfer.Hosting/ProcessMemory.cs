using System.Runtime;
using System.Runtime.InteropServices;

namespace MlNetTransfer.Hosting;

/// <summary>
/// Gives freed memory back to the operating system after a model is disposed. A model's load allocates large managed
/// arrays and native buffers (ONNX Runtime's weights); once freed, the garbage collector keeps the segments committed
/// and glibc keeps the pages in its heaps, so without this every reload leaves the resident size higher.
/// </summary>
internal static partial class ProcessMemory
{
    private static int _unavailable;

    public static void Return()
    {
        GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        if (OperatingSystem.IsLinux() && Volatile.Read(ref _unavailable) == 0)
        {
            try
            {
                MallocTrim(0);
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
                // Not glibc (musl on Alpine has no malloc_trim): its allocator returns memory its own way.
                Volatile.Write(ref _unavailable, 1);
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "malloc_trim")]
    private static partial int MallocTrim(nuint pad);
}
