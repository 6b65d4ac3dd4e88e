# KVM probe guest: a 512-byte boot sector. It switches from real mode to long mode, runs a VEX-encoded BMI2
# instruction when the CPU offers BMI2 (as Linux's decompressor does), and ends QEMU through isa-debug-exit:
# status 1 when everything ran, 3 on a wrong result. A fault resets the guest (QEMU exits 0 with -no-reboot); a
# KVM that cannot run the code stops with "emulation failure" and never exits by itself.
# Assemble: as --64 -o probe.o kvm-probe.S && ld -Ttext=0x7c00 --oformat=binary -o kvm-probe.img probe.o
        .intel_syntax noprefix
        .code16
        .globl _start
_start:
        cli
        xor ax, ax
        mov ds, ax
        mov es, ax
        mov ss, ax
        mov sp, 0x7c00
        # Identity map of the first 2 MiB: PML4 at 0x1000, PDPT at 0x2000, one 2 MiB page in the PD at 0x3000.
        mov di, 0x1000
        mov cx, 0x1800
        rep stosw
        mov word ptr [0x1000], 0x2003
        mov word ptr [0x2000], 0x3003
        mov word ptr [0x3000], 0x0083
        mov eax, 0x1000
        mov cr3, eax
        mov eax, cr4
        or eax, 0x20
        mov cr4, eax
        mov ecx, 0xc0000080
        rdmsr
        or eax, 0x100
        wrmsr
        lgdt [gdt_pointer]
        mov eax, cr0
        or eax, 0x80000001
        mov cr0, eax
        .att_syntax
        ljmp $0x08, $long_mode
        .intel_syntax noprefix

        .code64
long_mode:
        mov ax, 0x10
        mov ds, ax
        mov es, ax
        mov ss, ax
        mov eax, 7
        xor ecx, ecx
        cpuid
        bt ebx, 8
        jnc passed
        mov eax, 1
        mov edx, 3
        shlx eax, eax, edx
        cmp eax, 8
        jne failed
passed:
        xor eax, eax
        out 0xf4, al
failed:
        mov al, 1
        out 0xf4, al
halt:
        hlt
        jmp halt

        .p2align 3
gdt:
        .quad 0
        .quad 0x00209a0000000000
        .quad 0x0000920000000000
gdt_pointer:
        .word gdt_pointer - gdt - 1
        .long gdt

        .org 510
        .word 0xaa55
