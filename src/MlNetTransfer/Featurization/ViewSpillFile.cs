using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using MlNetTransfer.IO;

namespace MlNetTransfer.Featurization;

/// <summary>
/// A process-private temp file of views, each written once and read back many times (fine-tuning reads a view of every
/// image each epoch), as 16-bit floats or, for <see cref="ViewStorage.Disk"/> and for a view with a value a 16-bit
/// float cannot hold, 32-bit floats. Reads and writes are positional (<see cref="RandomAccess"/>): thread-safe,
/// and nothing of the file is mapped into the process, so its pages live in the OS's file cache (which the OS may drop)
/// and not in the process's resident set, where a memory map's touched pages would count. The file is deleted when
/// closed; one a killed process left is removed when the next run opens the folder.
/// </summary>
internal sealed class ViewSpillFile : IDisposable
{
    private readonly SafeFileHandle _handle;
    private long _end;
    private int _wide;

    /// <param name="folder">Where the file goes (created if missing).</param>
    /// <param name="length">Floats per view.</param>
    /// <param name="half">Store 16-bit floats where they hold the values.</param>
    public ViewSpillFile(string folder, int length, bool half)
    {
        Directory.CreateDirectory(folder);
        TempFiles.RemoveStale(folder);
        FilePath = TempFiles.NewPath(folder, ".views");
        Length = length;
        Half = half;
        _handle = File.OpenHandle(FilePath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, FileOptions.DeleteOnClose | FileOptions.RandomAccess);
    }

    /// <summary>The temp folder's <c>MlNetTransfer-views</c>.</summary>
    public static string DefaultFolder => Path.Combine(Path.GetTempPath(), "MlNetTransfer-views");

    public string FilePath { get; }

    /// <summary>Floats per view.</summary>
    public int Length { get; }

    /// <summary>Whether views are stored as 16-bit floats where they fit.</summary>
    public bool Half { get; }

    /// <summary>Bytes written so far.</summary>
    public long Bytes => Interlocked.Read(ref _end);

    /// <summary>Views kept as 32-bit floats although <see cref="Half"/> was asked (a value beyond ±65504).</summary>
    public int WideViews => Volatile.Read(ref _wide);

    /// <summary>Stores one view (<see cref="Length"/> floats): where it went and whether as 16-bit floats.</summary>
    public (long Offset, bool Half) Append(ReadOnlySpan<float> view)
    {
        if (view.Length != Length)
            throw new ArgumentException($"a view has {Length} values, not {view.Length}");
        bool half = Half && (view.Length == 0 || TensorPrimitives.MaxMagnitude(view) <= (float)System.Half.MaxValue);
        if (Half && !half)
            Interlocked.Increment(ref _wide);
        int bytes = Length * (half ? 2 : 4);
        long offset = Interlocked.Add(ref _end, bytes) - bytes;
        var buffer = half ? ArrayPool<byte>.Shared.Rent(bytes) : null;
        try
        {
            if (half)
                TensorPrimitives.ConvertToHalf(view, MemoryMarshal.Cast<byte, Half>(buffer.AsSpan(0, bytes)));
            RandomAccess.Write(_handle, half ? buffer.AsSpan(0, bytes) : MemoryMarshal.AsBytes(view), offset);
        }
        catch (IOException e)
        {
            throw new IOException($"cannot write the views to {FilePath} ({e.Message}): free space there, point TMPDIR (TEMP on Windows) at a larger disk, or keep them in memory", e);
        }
        finally
        {
            if (buffer is not null)
                ArrayPool<byte>.Shared.Return(buffer);
        }
        return (offset, half);
    }

    /// <summary>Stores an image's views; the result reads them back.</summary>
    public ViewValues Append(IReadOnlyList<float[]> views)
    {
        var offsets = new long[views.Count];
        var half = new bool[views.Count];
        for (int v = 0; v < views.Count; v++)
            (offsets[v], half[v]) = Append(views[v]);
        return Views(offsets, half);
    }

    /// <summary>An image's views stored before, as <see cref="Append(ReadOnlySpan{float})"/> said (in plan order).</summary>
    public ViewValues Views(long[] offsets, bool[] half) => new Stored(this, offsets, half);

    private void Read(long offset, bool half, Span<float> target)
    {
        if (!half)
        {
            ReadExactly(MemoryMarshal.AsBytes(target), offset);
            return;
        }
        int bytes = target.Length * 2;
        var buffer = ArrayPool<byte>.Shared.Rent(bytes);
        try
        {
            ReadExactly(buffer.AsSpan(0, bytes), offset);
            TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(buffer.AsSpan(0, bytes)), target);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void ReadExactly(Span<byte> target, long offset)
    {
        while (target.Length > 0)
        {
            int read = RandomAccess.Read(_handle, target, offset);
            if (read == 0)
                throw new IOException($"{FilePath} ends before the views it was given");
            target = target[read..];
            offset += read;
        }
    }

    public void Dispose() => _handle.Dispose();

    /// <summary>One image's views: where each is in the file, and in which width.</summary>
    private sealed class Stored(ViewSpillFile file, long[] offsets, bool[] half) : ViewValues
    {
        public override int Count => offsets.Length;

        public override int Length => file.Length;

        public override long MemoryBytes => 0;

        public override long DiskBytes => half.Sum(h => (long)file.Length * (h ? 2 : 4));

        public override float[] this[int view]
        {
            get
            {
                var values = new float[file.Length];
                CopyTo(view, values);
                return values;
            }
        }

        public override void CopyTo(int view, Span<float> target) => file.Read(offsets[view], half[view], target[..file.Length]);

        public override ViewValues Take(int count) => count == offsets.Length ? this : new Stored(file, offsets[..count], half[..count]);
    }
}
