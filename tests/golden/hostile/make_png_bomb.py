# Writes png_inflate_bomb.png: a 1x1 RGB PNG whose image data inflates to 100,000,000 bytes where 4
# are expected (a "zip bomb"). tests/test_hostile_data.cpp decodes it.
import struct
import zlib


def chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)


idat = zlib.compress(b'\0' * 100_000_000, 9)
png = (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 1, 1, 8, 2, 0, 0, 0)) + chunk(b'IDAT', idat) +
       chunk(b'IEND', b''))
open('png_inflate_bomb.png', 'wb').write(png)
