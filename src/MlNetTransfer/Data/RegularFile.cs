using System.Runtime.InteropServices;

namespace MlNetTransfer.Data;

/// <summary>
/// Whether a path (its links followed) is a regular file, asked before opening it: opening a FIFO blocks until a writer
/// comes, and a device such as /dev/zero never ends. .NET reports a FIFO, a device and a regular file alike
/// (<see cref="FileAttributes.Normal"/>), so on Unix the type comes from stat(2), through the runtime's own native shim
/// (libSystem.Native, shipped with every .NET on Unix); where that cannot be had, a file that reports 0 bytes is
/// refused (what FIFOs, devices and sockets report), and readers cap what they read besides.
/// </summary>
internal static class RegularFile
{
    /// <summary>Null when <paramref name="path"/> is a regular file (or does not exist: the caller says so), else why it is not, as "a FIFO (named pipe)".</summary>
    public static string? NotRegular(string path)
    {
        if (OperatingSystem.IsWindows() || Directory.Exists(path) || !File.Exists(path))
            return Directory.Exists(path) ? "a folder" : null;
        return TypeOf(path) switch
        {
            FileType.Regular => null,
            FileType.Fifo => "a FIFO (named pipe)",
            FileType.CharDevice => "a character device",
            FileType.BlockDevice => "a block device",
            FileType.Socket => "a socket",
            FileType.Unknown when new FileInfo(path).Length == 0 => "empty, or not a regular file (a FIFO, device or socket; the file type could not be read)",
            _ => null,
        };
    }

    private enum FileType { Unknown, Regular, Fifo, CharDevice, BlockDevice, Socket, Other }

    private static bool _shimMissing;

    private static FileType TypeOf(string path)
    {
        if (_shimMissing)
            return FileType.Unknown;
        try
        {
            // The shim's FileStatus: int Flags, int Mode, ...; the buffer is larger than the struct has ever been.
            var status = new byte[512];
            if (Stat(path, status) != 0)
                return FileType.Unknown;
            return (BitConverter.ToInt32(status, 4) & 0xF000) switch
            {
                0x8000 => FileType.Regular,
                0x1000 => FileType.Fifo,
                0x2000 => FileType.CharDevice,
                0x6000 => FileType.BlockDevice,
                0xC000 => FileType.Socket,
                _ => FileType.Other,
            };
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            _shimMissing = true;
            return FileType.Unknown;
        }
    }

    /// <summary>stat(2) (links followed) as the runtime's System.IO calls it; 0 on success.</summary>
    [DllImport("libSystem.Native", EntryPoint = "SystemNative_Stat", CharSet = CharSet.Ansi, BestFitMapping = false)]
    private static extern int Stat([MarshalAs(UnmanagedType.LPUTF8Str)] string path, [Out] byte[] status);
}

/// <summary>A read-only view of a stream that fails once more than <see cref="Limit"/> bytes have come through.</summary>
internal sealed class CappedStream(Stream inner, long limit) : Stream
{
    private long _read;

    public long Limit => limit;

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int n = inner.Read(buffer.Length > limit - _read + 1 ? buffer[..(int)Math.Max(1, limit - _read + 1)] : buffer);
        _read += n;
        if (_read > limit)
            throw new CapExceededException(limit);
        return n;
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => _read; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
            inner.Dispose();
        base.Dispose(disposing);
    }
}

/// <summary>More than a <see cref="CappedStream"/>'s limit was read.</summary>
internal sealed class CapExceededException(long limit) : IOException($"more than {limit} bytes")
{
    public long Limit => limit;
}
