/* vectors_blob.S - the protocol vectors file, linked into a test image as read-only data (target_io.c). */
    .section .rodata.vectors_json, "a"
    .global vectors_json
    .global vectors_json_end
vectors_json:
    .incbin VECTORS_PATH
vectors_json_end:
    .byte 0
