/* Test helper: encodes raw signed 16-bit mono PCM from stdin into an AMR file on stdout.
 *   amr_encode nb   < 8 kHz PCM  > file.amr   (AMR-NB 12.2 kbit/s, libopencore-amrnb)
 *   amr_encode wb   < 16 kHz PCM > file.amr   (AMR-WB 23.85 kbit/s, libvo-amrwbenc)
 * Debian's ffmpeg and sox cannot encode AMR; these two libraries can. Built by the tests with cc. */
#include <stdio.h>
#include <string.h>
#include <opencore-amrnb/interf_enc.h>
#include <vo-amrwbenc/enc_if.h>

int main(int argc, char **argv) {
    unsigned char out[512];
    if (argc == 2 && strcmp(argv[1], "nb") == 0) {
        short pcm[160];
        void *enc = Encoder_Interface_init(0);
        fwrite("#!AMR\n", 1, 6, stdout);
        while (fread(pcm, sizeof(short), 160, stdin) == 160) {
            int n = Encoder_Interface_Encode(enc, MR122, pcm, out, 0);
            fwrite(out, 1, (size_t)n, stdout);
        }
        Encoder_Interface_exit(enc);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "wb") == 0) {
        short pcm[320];
        void *enc = E_IF_init();
        fwrite("#!AMR-WB\n", 1, 9, stdout);
        while (fread(pcm, sizeof(short), 320, stdin) == 320) {
            int n = E_IF_encode(enc, 8, pcm, out, 0);
            fwrite(out, 1, (size_t)n, stdout);
        }
        E_IF_exit(enc);
        return 0;
    }
    fprintf(stderr, "usage: amr_encode nb|wb < pcm_s16le > out.amr\n");
    return 2;
}
